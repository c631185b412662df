"""Summarize a sweep: evaluate every run of a `tools/track.py -m ...` multirun folder against its labelled clip and
write sweep.csv, sweep.md (one row per run) and one PNG per swept parameter.

Example: python tools/summarize.py outputs/sweep/2026-11-21_09-30-00 --frames 1-400
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.structures import InputError
from tracker.eval import parse_frame_range
from tracker.sweep import summarize_sweep


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options: the sweep folder, ground truth, frame range, output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun folder (hydra.sweep.dir)")
    parser.add_argument("--gt", type=Path, help="gt.txt or MOT folder for every run (default: each video's gt/gt.txt)")
    parser.add_argument("--frames", help="inclusive frame range FIRST-LAST (default: frames both run and gt cover)")
    parser.add_argument("--out", type=Path, help="output folder (default: SWEEP_DIR/summary)")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Summarize the sweep and print its table; on bad input print one sentence to stderr and return 2."""
    args = parse_args(argv)
    try:
        frames = parse_frame_range(args.frames) if args.frames else None
        text, written = summarize_sweep(args.sweep_dir, args.out, args.gt, frames, plots=not args.no_plots)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    print("\nwrote " + ", ".join(str(path) for path in written))
    return 0

