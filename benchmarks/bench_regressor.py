"""Regressor throughput: person crops per second through HMR2 (small and ViT-H presets) at batch sizes 1/8/32.

Random weights (the cost is the same as with the checkpoint). For each (preset, batch size) --warmup untimed batches,
then batches until --seconds have passed or --max-iters ran (at least one): ViT-H on a 2-core CPU takes minutes per
batch of 32, so bound it (e.g. --presets vit_h --warmup 0 --max-iters 1). Also times make_crops (the batched warp)
for the same number of people spread over a window of 8 PETS-sized frames (576×768). Prints a table and writes it
to --output (markdown) and a .json beside it.

    python -m benchmarks.bench_regressor --presets small                 # small preset, CPU, fp32
    python -m benchmarks.bench_regressor --presets vit_h --warmup 0 --max-iters 1 \
        --output outputs/bench_regressor_vith.md
    python -m benchmarks.bench_regressor --presets small --amp bfloat16 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from models.crops import make_crops
from models.regressors.hmr2 import PRESETS, HMR2Regressor

ROOT = Path(__file__).resolve().parents[1]
FRAME_HW = (576, 768)
WINDOW = 8


def window_of_people(count: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """WINDOW random frames and `count` PETS-sized boxes (about 40×100 px) spread over them."""
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 256, size=(*FRAME_HW, 3), dtype=np.uint8) for _ in range(WINDOW)]
    per_frame = np.bincount(np.arange(count) % WINDOW, minlength=WINDOW)
    boxes = []
    for n in per_frame:
        corner = rng.uniform([0, 0], [FRAME_HW[1] - 60, FRAME_HW[0] - 150], size=(n, 2))
        boxes.append(
            np.concatenate([corner, corner + rng.uniform([30, 80], [60, 150], size=(n, 2))], 1).astype(np.float32)
        )
    return frames, boxes


def time_runs(run, seconds: float, max_iters: int, warmup: int) -> list[float]:
    """Wall times of `run()` after `warmup` untimed calls: until `seconds` elapsed or `max_iters` (at least one)."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    while not times or (sum(times) < seconds and len(times) < max_iters):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def bench(preset: str, batch_size: int, args: argparse.Namespace) -> dict:
    regressor = HMR2Regressor(
        preset=preset, random_weights=True, device=args.device, batch_size=batch_size, amp_dtype=args.amp
    )
    frames, boxes = window_of_people(batch_size)
    crop_times = time_runs(
        lambda: make_crops(frames, boxes, device=args.device), args.seconds / 4, args.max_iters, warmup=1
    )
    batch = make_crops(frames, boxes, device=args.device)
    regressor_times = time_runs(lambda: regressor.predict(batch), args.seconds, args.max_iters, args.warmup)
    best, median = min(regressor_times), float(np.median(regressor_times))
    return {
        "preset": preset,
        "batch": batch_size,
        "iterations": len(regressor_times),
        "crops_per_s_best": batch_size / best,
        "crops_per_s_median": batch_size / median,
        "ms_per_batch_median": 1000 * median,
        "make_crops_ms_median": 1000 * float(np.median(crop_times)),
    }


def format_table(rows: list[dict]) -> str:
    lines = [
        "| preset | batch | iters | crops/s (best) | crops/s (median) | ms/batch (median) | make_crops ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['batch']} | {r['iterations']} | {r['crops_per_s_best']:.2f} | "
            f"{r['crops_per_s_median']:.2f} | {r['ms_per_batch_median']:.0f} | {r['make_crops_ms_median']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "vit_h"], choices=sorted(PRESETS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default=None, choices=["bfloat16", "float16"], help="autocast dtype (default fp32)")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="timed seconds per configuration, at least one batch"
    )
    parser.add_argument("--max-iters", type=int, default=20)
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed batches first (0 for ViT-H on CPU: minutes each)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_regressor.md")
    args = parser.parse_args()

    header = (
        f"HMR2 regressor, random weights, device {args.device}, {torch.get_num_threads()} threads, "
        f"{args.amp or 'float32'}, crops 256×256 (ViT sees 256×192)"
    )
    print(header)
    rows = []
    for preset in args.presets:
        for batch_size in args.batch_sizes:
            rows.append(bench(preset, batch_size, args))
            print(f"  {preset} batch {batch_size}: {rows[-1]['crops_per_s_median']:.2f} crops/s", flush=True)
    table = format_table(rows)
    print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(header + "\n\n" + table + "\n")
    args.output.with_suffix(".json").write_text(json.dumps({"setup": header, "results": rows}, indent=2))
    print(f"Wrote {args.output} and {args.output.with_suffix('.json')}")


if __name__ == "__main__":
    main()
