"""Speed of the blazepose regressor per person: BlazePose landmarks (crop + network) and the body fit.

People are PETS09-S2L1 ground-truth boxes of frames 1–16 (first `--people`), run in batches of `--batch`; each
stage is timed `--repeats` times after a warm-up and the median is reported, for each torch thread count given.
Prints a table and writes it as JSON to --output.

    python -m benchmarks.bench_blazepose --batch 8 --threads 1 2 --output outputs/bench_blazepose.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from models.body import load_body_model
from models.camera import full_frame_focal_length
from models.regressors.blazepose import BlazePoseLandmarker
from models.regressors.blazepose.fit import BodyFitter, FitConfig
from tracker.io import open_source

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "PETS09-S2L1"


def load_people(count: int) -> tuple[list[np.ndarray], torch.Tensor, torch.Tensor]:
    """Frames 1–16 and up to `count` ground-truth boxes (xyxy) with their frame positions."""
    gt = np.loadtxt(DATA / "gt" / "gt.txt", delimiter=",", ndmin=2)
    frames, boxes, frame_ids = [], [], []
    for position, frame in enumerate(open_source(DATA, start=1, end=16)):
        frames.append(frame.image)
        for row in gt[(gt[:, 0] == frame.index) & (gt[:, 6] != 0)]:
            boxes.append([row[2], row[3], row[2] + row[4], row[3] + row[5]])
            frame_ids.append(position)
    return frames, torch.tensor(boxes[:count], dtype=torch.float32), torch.tensor(frame_ids[:count])


def median_ms(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--people", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--fit-steps", type=int, default=FitConfig.steps)
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_blazepose.json")
    args = parser.parse_args()
    frames, boxes, frame_ids = load_people(args.people)
    body_model = load_body_model()
    landmarker = BlazePoseLandmarker(batch_size=args.batch)
    image_size = torch.tensor([[frames[0].shape[1], frames[0].shape[0]]], dtype=torch.float32)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        fitter = BodyFitter(body_model, FitConfig(steps=args.fit_steps, threads=threads))
        per_batch = []
        for start in range(0, len(boxes), args.batch):
            chunk = slice(start, start + args.batch)
            people = len(boxes[chunk])
            landmarks = landmarker(frames, boxes[chunk], frame_ids[chunk])
            sizes = image_size.expand(people, 2)
            focal = full_frame_focal_length(sizes, 5000.0, 256)
            landmark_ms = median_ms(partial(landmarker, frames, boxes[chunk], frame_ids[chunk]), args.repeats)
            fit_ms = median_ms(partial(fitter.fit, landmarks, boxes[chunk], sizes, focal), args.repeats)
            per_batch.append((people, landmark_ms, fit_ms))
        people = sum(p for p, _, _ in per_batch)
        landmark_ms = sum(ms for _, ms, _ in per_batch) / people
        fit_ms = sum(ms for _, _, ms in per_batch) / people
        rows.append({"threads": threads, "batch": args.batch, "people": people, "landmarks_ms_per_person": landmark_ms,
                     "fit_ms_per_person": fit_ms, "total_ms_per_person": landmark_ms + fit_ms})  # fmt: skip
    print(f"{'threads':>7} {'batch':>5} {'landmarks ms':>12} {'fit ms':>8} {'total ms':>9}  (per person, CPU)")
    for row in rows:
        print(f"{row['threads']:>7} {row['batch']:>5} {row['landmarks_ms_per_person']:>12.1f} "
              f"{row['fit_ms_per_person']:>8.1f} {row['total_ms_per_person']:>9.1f}")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__, "rows": rows}
    args.output.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
