"""Smoothing filters on a run's bodies: how much they calm the joints and how far they pull them off the image.

For each filter (none, the causal one-euro of the run, the offline Savitzky–Golay and Gaussian of the export, at
several strengths) every track of RUN is filtered offline as tools/export.py does, and its joints posed again. Reported,
over the posed rows of matched tracks:
- joint acceleration: mean norm of the second difference of the 24 joints over three consecutive frames of a track,
  in m/s², of the joints as stored (camera frame, whose depth is the run's guess from body size) and of the joints
  relative to the pelvis (the pose alone);
- 2D error: mean and median distance (pixels) between the projected SMPL joints and the BlazePose landmarks mapped to
  them (JOINT_LANDMARKS of the fit; landmarks with visibility > 0.5), i.e. how well the filtered body still explains
  what was seen;
- the causal filter's cost in the run (ms per frame, TrackSmoother replayed over the run's frames).
RUN needs BlazePose bodies (landmarks in the results), e.g. `python tools/track.py end=400`.

    python -m benchmarks.eval_smoothing outputs/track/<run> [--output outputs/eval_smoothing]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.report import write_report
from models.regressors.blazepose.fit import JOINT_LANDMARKS
from models.structures import BodyArrays, Frame
from tracker.build import build_run_body_model
from tracker.io import load_results
from tracker.smoothing import Gaussian, OneEuro, SavitzkyGolay, TrackSmoother, smooth_results, smoothed_records
from tracker.tracker import TrackedFrame

FILTERS = {
    "none (the run's default)": None,
    "one_euro min_cutoff=0.5": OneEuro(min_cutoff=0.5),
    "one_euro (configs: min_cutoff=1)": OneEuro(),
    "one_euro min_cutoff=2": OneEuro(min_cutoff=2.0),
    "one_euro min_cutoff=1 beta_depth=1": OneEuro(beta_depth=1.0),
    "savgol window=5": SavitzkyGolay(window=5),
    "savgol (configs: window=9 order=2)": SavitzkyGolay(),
    "savgol window=13": SavitzkyGolay(window=13),
    "gaussian sigma=0.7": Gaussian(sigma=0.7),
    "gaussian (configs: sigma=1, the export's default)": Gaussian(),
    "gaussian sigma=1.5": Gaussian(sigma=1.5),
    "gaussian sigma=2.5": Gaussian(sigma=2.5),
}
MIN_VISIBILITY = 0.5
PELVIS = 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (BlazePose bodies) or its results.phx")
    parser.add_argument("--output", type=Path, default=Path("outputs/eval_smoothing/report.md"))
    return parser.parse_args()


def measure(records: list[dict], fps: float) -> dict[str, float]:
    """Joint accelerations (m/s², as stored and pelvis-relative) and the 2D error against the landmarks (px)."""
    tracks: dict[int, dict[int, np.ndarray]] = {}
    errors = []
    landmark_joints = [joint for joint, _, _ in JOINT_LANDMARKS]
    for index, record in enumerate(records):
        posed = np.asarray(record["has_pose"], dtype=bool) & np.isfinite(record["cam_t"]).all(axis=1)
        for row in np.flatnonzero(posed).tolist():
            tracks.setdefault(int(record["track_ids"][row]), {})[index] = record["joints_3d"][row].astype(np.float64)
            landmarks, visibility = record["landmarks_2d"][row], record["landmark_visibility"][row]
            for joint, ids in zip(landmark_joints, (ids for _, ids, _ in JOINT_LANDMARKS)):
                if visibility[list(ids)].min() > MIN_VISIBILITY:
                    target = landmarks[list(ids)].mean(axis=0)
                    errors.append(float(np.linalg.norm(record["joints_2d"][row, joint] - target)))
    absolute, relative = [], []
    for joints_by_index in tracks.values():
        for index, joints in joints_by_index.items():
            before, after = joints_by_index.get(index - 1), joints_by_index.get(index + 1)
            if before is None or after is None:
                continue
            second = (after - 2 * joints + before) * fps**2
            absolute.append(np.linalg.norm(second, axis=1).mean())
            centred = second - second[PELVIS]
            relative.append(np.linalg.norm(centred[1:], axis=1).mean())
    return {
        "acceleration_m_s2": float(np.mean(absolute)),
        "relative_acceleration_m_s2": float(np.mean(relative)),
        "error_2d_mean_px": float(np.mean(errors)),
        "error_2d_median_px": float(np.median(errors)),
    }


def causal_cost_ms(results, body_model, smoothing: OneEuro) -> float:
    """ms per frame of the run's hook, replayed over the run's records."""
    width, height = results.header["width"], results.header["height"]
    image = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (height, width, 3))
    frames = [
        TrackedFrame(
            frame=Frame(record["frame"], record["time"], image),
            track_ids=record["track_ids"],
            boxes=record["boxes"],
            scores=record["scores"],
            states=record["states"],
            det_index=np.full(len(record["track_ids"]), -1),
            bodies=BodyArrays.from_arrays(record),
        )
        for record in results.frames()
    ]
    smoother = TrackSmoother(smoothing, body_model)
    start = time.perf_counter()
    for tracked in frames:
        smoother.apply(tracked)
    return (time.perf_counter() - start) * 1000 / len(frames)


def main() -> None:
    args = parse_args()
    results = load_results(args.run)
    if "landmarks_2d" not in results.header["per_box_keys"]:
        raise SystemExit(f"{args.run} has no BlazePose landmarks: run it with regressor=blazepose.")
    body_model = build_run_body_model(results.header["config"]["body"])
    fps = float(results.header["fps"])
    rows, lines = [], []
    for name, smoothing in FILTERS.items():
        start = time.perf_counter()
        if smoothing is None:
            records = list(results.frames())
        else:
            records = list(smoothed_records(results, smooth_results(results, smoothing, body_model)))
        seconds = time.perf_counter() - start
        figures = {"filter": name, **measure(records, fps), "offline_s": seconds}
        if isinstance(smoothing, OneEuro):
            figures["causal_ms_per_frame"] = causal_cost_ms(results, body_model, smoothing)
        rows.append(figures)
        causal = f"{figures['causal_ms_per_frame']:.2f}" if "causal_ms_per_frame" in figures else ""
        lines.append(
            f"| {name} | {figures['acceleration_m_s2']:.1f} | {figures['relative_acceleration_m_s2']:.2f} | "
            f"{figures['error_2d_mean_px']:.2f} | {figures['error_2d_median_px']:.2f} | {seconds:.1f} | {causal} |"
        )
    header = (
        "| filter | joint acceleration m/s² (camera frame) | relative to pelvis m/s² | 2D error mean px | "
        "median px | offline s (whole run) | causal ms/frame |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    load = os.getloadavg()[0]
    setup = (
        f"Smoothing on {results.path} ({len(results)} frames, {len(results.track_ids())} tracks, {fps:g} fps); "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    write_report(args.output, setup, header + "\n" + "\n".join(lines), rows)


if __name__ == "__main__":
    main()
