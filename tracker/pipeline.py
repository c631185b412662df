"""One tracking run: frames → detections → tracker → results on disk, streamed window by window."""
from __future__ import annotations

import functools
import json
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from models.appearance.stage import AppearanceStage
from models.body import BodyModel
from models.body_estimation import BodyEstimator
from models.detection.base import Detector
from models.hmr2 import Regressor
from models.texture.sampler import TextureSampler
from tracker.appearance import AppearanceMemory
from tracker.errors import InputError
from tracker.features import detection_cues
from tracker.io import ResultsWriter, open_source
from tracker.tracker import TrackedFrame, Tracker

log = logging.getLogger(__name__)


BODY_KEYS = (
    "smpl_global_orient",
    "smpl_body_pose",
    "smpl_betas",
    "cam_t",
    "focal_length",
    "joints_3d",
    "joints_2d",
    "has_pose",
)


def frame_record(tracked: TrackedFrame, time_s: float, per_detection: dict[str, np.ndarray]) -> dict:
    """The per-frame record of the results schema (see README, 'Results'): one row per live track.

    Per-detection arrays are attached to the tracks matched to those detections; other tracks get NaN (False).
    """
    record = {
        "frame": tracked.frame,
        "time": time_s,
        "track_ids": tracked.track_ids,
        "boxes": tracked.boxes,
        "scores": tracked.scores,
        "states": tracked.states,
    }
    matched = tracked.det_index >= 0
    for key, values in per_detection.items():
        fill = False if values.dtype == bool else np.nan
        rows = np.full((len(tracked),) + values.shape[1:], fill, dtype=values.dtype)
        rows[matched] = values[tracked.det_index[matched]]
        record[key] = rows
    return record


def build_regressor(cfg: DictConfig, body_model: BodyModel) -> Regressor:
    """The configured regressor; regressors that measure the body model are configured as partials."""
    regressor = build(cfg.regressor)
    return regressor(body_model=body_model) if isinstance(regressor, functools.partial) else regressor


def build(node: DictConfig, **kwargs: object) -> object:
    """`hydra.utils.instantiate`, turning a stage's rejection of its configuration into one InputError sentence."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause: BaseException = error
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, InputError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError)):
            raise InputError(f"The configuration of {node._target_} was rejected: {cause}.") from None
        raise


def build_appearance(cfg: DictConfig, body_model: BodyModel, regressor: Regressor) -> AppearanceStage | None:
    """The texture + appearance stage when `appearance=` selects an encoder, else None."""
    if cfg.get("appearance") is None:
        return None
    sampler = TextureSampler(
        body_model,
        build(cfg.texture.rasterizer),
        uv_size=cfg.texture.uv_size,
        depth_tolerance=cfg.texture.depth_tolerance,
    )
    encoder = build(cfg.appearance.encoder)(body_model=body_model)
    return AppearanceStage(body_model, sampler, encoder, regressor.crop_spec)


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Tracks `cfg.video` into `run_dir`; returns the run summary (also written to summary.json)."""
    source = open_source(cfg.video, start=cfg.start, end=cfg.end, stride=cfg.stride)
    detector: Detector = build(cfg.detector)
    body_model: BodyModel = build(cfg.body)
    regressor = build_regressor(cfg, body_model)
    appearance = build_appearance(cfg, body_model, regressor)
    estimator = BodyEstimator(regressor, body_model, cfg.device, pixels=appearance is not None)
    memory = None if appearance is None else AppearanceMemory(appearance.encoder, cfg.appearance.memory_blend_rate)
    tracker: Tracker = build(cfg.tracker, thresholds=detector.thresholds, appearance=memory)
    header = {
        "video": str(source.path),
        "name": source.name,
        "fps": source.fps,
        "width": source.width,
        "height": source.height,
        "num_frames": source.num_frames,
        "frame_numbers": [source.frame_numbers[0], source.frame_numbers[-1], cfg.stride],
        "regressor": estimator.regressor.name,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    log.info("%s: %d of %d frames, %dx%d", source.name, len(source), source.num_frames, source.width, source.height)
    seconds: dict[str, float] = defaultdict(float)
    frames = boxes = 0
    started = time.perf_counter()
    with ResultsWriter(run_dir, header, list(cfg.output.mot_states), BODY_KEYS) as writer:
        clock = time.perf_counter()
        for window in source.windows(cfg.window):
            now = time.perf_counter()
            seconds["decode"] += now - clock
            detections = detector.detect(window)
            clock = time.perf_counter()
            seconds["detect"] += clock - now
            bodies = estimator.estimate(window, detections)
            now = time.perf_counter()
            seconds["regress"] += now - clock
            clock = now
            textures = embeddings = None
            if appearance is not None and len(bodies):
                textures, embeddings = appearance.run(bodies)
                now = time.perf_counter()
                seconds["texture"] += now - clock
                clock = now
            for i, (frame, frame_detections) in enumerate(zip(window, detections)):
                body_arrays = bodies.frame_arrays(i, len(frame_detections))
                rows = torch.as_tensor(bodies.frame_rows(i))
                cues = detection_cues(
                    frame_detections,
                    (frame.width, frame.height),
                    body_arrays,
                    appearance=None if embeddings is None else embeddings[rows],
                    texture=None if textures is None else textures[rows],
                )
                tracked = tracker.update(frame_detections, frame.index, cues)
                now = time.perf_counter()
                seconds["associate"] += now - clock
                writer.write_frame(frame_record(tracked, frame.time, body_arrays))
                clock = time.perf_counter()
                seconds["write"] += clock - now
                frames += 1
                boxes += len(frame_detections)
    total = time.perf_counter() - started
    summary = {
        "frames": frames,
        "detections_per_frame": boxes / max(frames, 1),
        "seconds": total,
        "fps": frames / total if total > 0 else 0.0,
        "stage_seconds": dict(seconds),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    stages = ", ".join(f"{k} {v:.1f}s ({100 * v / total:.0f}%)" for k, v in seconds.items())
    log.info("%d frames in %.1fs (%.1f fps); %s", frames, total, summary["fps"], stages)
    return summary
