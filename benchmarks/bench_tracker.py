"""Tracker benchmark: update time per frame at 5/20/50 people (synthetic), and peak memory of real runs.

Usage: python -m benchmarks.bench_tracker [--video ../shared/data/PETS09-S2L1] [--out bench_tracker.json]
Prints a table and writes the figures to a JSON file. The memory part runs tools/track.py on the video twice
(first 400 frames, then all frames): peak RSS should not grow with the length of the video.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from models.structures import Detections, Frame, Observations

ROOT = Path(__file__).resolve().parents[1]


def synthetic_walkers(people: int, frames: int, seed: int = 0) -> list[Detections]:
    """People walking at constant speed across a 1920×1080 frame with box noise and 5% missed detections.

    Scores are drawn on the public-detection scale (40–100), so the default thresholds apply.
    """
    rng = np.random.default_rng(seed)
    start = rng.uniform([100, 100], [1800, 900], size=(people, 2))
    velocity = rng.normal(0, 3, size=(people, 2))
    size = np.stack([rng.uniform(30, 60, people), rng.uniform(80, 160, people)], axis=1)
    out = []
    for t in range(frames):
        centre = start + velocity * t + rng.normal(0, 1.5, size=(people, 2))
        keep = rng.random(people) > 0.05
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)[keep]
        out.append(Detections(boxes, rng.uniform(40, 100, keep.sum())))
    return out


def update_times_ms(people: int, frames: int = 300, warmup: int = 20) -> np.ndarray:
    """Per-frame `Tracker.update` wall time in ms with the default tracker configuration."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("track")
    tracker = instantiate(cfg.tracker, thresholds=instantiate(cfg.detector.public.thresholds))
    times = []
    image = np.zeros((576, 768, 3), np.uint8)
    for frame, dets in enumerate(synthetic_walkers(people, frames), start=1):
        observations = Observations(Frame(frame, frame / 7, image), dets)
        started = time.perf_counter()
        tracker.update(observations)
        times.append((time.perf_counter() - started) * 1000)
    return np.asarray(times[warmup:])


def peak_rss_mb(video: str, end: int | None) -> tuple[float, float]:
    """Peak resident memory (MB) and wall time (s) of one `tools/track.py` run in a fresh process."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(ROOT / "tools" / "track.py"), f"video={video}", f"hydra.run.dir={out}"]
        if end is not None:
            cmd.append(f"end={end}")
        probe = (
            "import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t)"
        )
        result = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True)
        rss, seconds = result.stdout.split()
        return float(rss), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(ROOT.parent / "shared" / "data" / "PETS09-S2L1"))
    parser.add_argument("--out", default="bench_tracker.json")
    args = parser.parse_args()

    results: dict = {"update_ms": {}, "peak_rss": {}}
    print(f"{'people':>6} {'median ms':>10} {'p95 ms':>8}")
    for people in (5, 20, 50):
        times = update_times_ms(people)
        results["update_ms"][people] = {"median": float(np.median(times)), "p95": float(np.percentile(times, 95))}
        print(f"{people:>6} {np.median(times):>10.3f} {np.percentile(times, 95):>8.3f}")

    if Path(args.video).exists():
        print(f"\n{'frames':>6} {'peak RSS MB':>12} {'wall s':>8}")
        for end in (400, None):
            rss, seconds = peak_rss_mb(args.video, end)
            label = str(end) if end else "all"
            results["peak_rss"][label] = {"mb": rss, "seconds": seconds}
            print(f"{label:>6} {rss:>12.1f} {seconds:>8.1f}")
    else:
        print(f"\n{args.video} not found: memory part skipped")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
