"""The results schema and the run folder, named once: every file a run writes and every key of a results record.

A frame record holds the `FRAME_KEYS` and, for runs with bodies, the per-box `BODY_KEYS` that the run's regressor
fills (`BodyArrays` fields; listed in the header's `per_box_keys`). README, "Results schema", documents them.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from models.structures import BodyArrays

SCHEMA = "phalanx.results"
VERSION = 2  # 2: results.phx (JSON and raw arrays); 1: results.jbl (joblib pickles, read only with trust=True)
LEGACY_VERSION = 1

# Files of a run folder.
RESULTS_FILE = "results.phx"
LEGACY_RESULTS_FILE = "results.jbl"  # version 1 runs
MOT_FILE = "tracks.mot.txt"
SUMMARY_FILE = "summary.json"
RESOLVED_CONFIG_FILE = "config.resolved.yaml"
HYDRA_FOLDER = ".hydra"
BIRDSEYE_FILE = "birdseye.png"  # tools/render.py --birdseye, with birdseye.mp4 beside it
EXPORT_FOLDER = "export"  # where tools/export.py writes unless told otherwise
CHECKPOINT_FILE = "checkpoint.phx"  # a running or stopped run's state after its last window (resume=true)
LOCK_FILE = "run.lock"  # held while a process writes the folder (tracker.io.run_lock)
PARTIAL_SUFFIX = ".partial"  # a file being written; renamed when its writer closes without error

# Keys of the header record, set by the writer.
HEADER_KEYS = ("schema", "version", "per_box_keys")
# Keys of every frame record: the tracks alive after the frame.
FRAME_KEYS = ("frame", "time", "track_ids", "boxes", "scores", "states")
# Frame key written by runs since it was added, read as False where absent: the frame starts a new shot.
CUT_KEY = "cut"
# Per-box keys of runs with bodies, in record order; the landmark keys only for the blazepose regressor.
BODY_KEYS = tuple(f.name for f in fields(BodyArrays))
# Of those, the keys only regressors that fit landmarks fill.
LANDMARK_KEYS = ("landmarks_2d", "landmark_visibility", "landmarks_world", "pose_score", "fit_error", "reliable")
# What posing a track's mesh reads.
MESH_KEYS = ("smpl_global_orient", "smpl_body_pose", "smpl_betas", "cam_t", "focal_length")


def body_keys(with_landmarks: bool) -> tuple[str, ...]:
    """The per-box keys of a run's records: all `BODY_KEYS`, or those without the landmark keys."""
    return BODY_KEYS if with_landmarks else tuple(key for key in BODY_KEYS if key not in LANDMARK_KEYS)


def frame_record(
    frame: int,
    time: float,
    track_ids: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    states: np.ndarray,
    bodies: BodyArrays | None,
    cut: bool = False,
) -> dict:
    """One frame's results record: the tracks' rows, whether the frame starts a new shot and, when the run has
    bodies, their per-box body arrays."""
    record = {
        "frame": frame,
        "time": time,
        "track_ids": track_ids,
        "boxes": boxes,
        "scores": scores,
        "states": states,
        CUT_KEY: bool(cut),
    }
    if bodies is not None:
        record.update(bodies.arrays())
    return record
