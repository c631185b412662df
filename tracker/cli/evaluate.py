"""Evaluate tracker results against MOT ground truth and print HOTA / CLEAR / Identity metrics per sequence.

Example: python tools/evaluate.py --gt GT.txt --results outputs/run1 --frames 1-400 --json metrics.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.structures import InputError
from tracker.eval import (
    COUNT_METRICS,
    evaluate_sequences,
    locate_gt_file,
    locate_results_file,
    parse_frame_range,
)

TABLE_COLUMNS = (
    "HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "Recall", "Precision",
    "IDSW", "Frag", "FP", "FN", "MT", "PT", "ML", "GT_IDs", "Pred_IDs",
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options: ground-truth and results files (or folders), names, frame range, JSON output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", nargs="+", required=True, help="gt.txt files or MOT sequence folders (gt/gt.txt)")
    parser.add_argument("--results", nargs="+", required=True, help="MOT results files or phalanx run folders")
    parser.add_argument("--names", nargs="+", help="one name per sequence (default: the sequence folder's name)")
    parser.add_argument("--frames", help="inclusive 1-based frame range FIRST-LAST applied to both, e.g. 1-400")
    parser.add_argument("--json", type=Path, help="also write all metrics to this JSON file")
    return parser.parse_args(argv)


def sequence_name(gt_path: Path) -> str:
    """Name a sequence after its folder: SEQ for SEQ/gt/gt.txt, SEQ/gt.txt or the folder SEQ itself."""
    folder = gt_path.parent.parent if gt_path.parent.name == "gt" else gt_path.parent
    return folder.name or str(gt_path)


def format_table(results: dict[str, dict[str, float]]) -> str:
    """Aligned text table: fractions as percentages with one decimal, counts as integers."""
    rows = [["Sequence", *TABLE_COLUMNS]]
    for name, metrics in results.items():
        cells = [f"{metrics[c]:d}" if c in COUNT_METRICS else f"{100 * metrics[c]:.1f}" for c in TABLE_COLUMNS]
        rows.append([name, *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation; on bad input print one sentence to stderr and return 2."""
    args = parse_args(argv)
    try:
        if len(args.gt) != len(args.results):
            raise InputError(
                f"Got {len(args.gt)} --gt paths but {len(args.results)} --results paths; expected as many."
            )
        if args.names is not None and len(args.names) != len(args.gt):
            raise InputError(f"Got {len(args.names)} --names for {len(args.gt)} sequences; expected one per sequence.")
        gt_files = [locate_gt_file(path) for path in args.gt]
        results_files = [locate_results_file(path) for path in args.results]
        names = args.names or [sequence_name(path) for path in gt_files]
        frames = parse_frame_range(args.frames) if args.frames else None
        results = evaluate_sequences(list(zip(names, gt_files, results_files)), frames)
    except InputError as error:
        print(error, file=sys.stderr)
        return 2
    shown = results if len(names) > 1 else {name: results[name] for name in names}
    print(format_table(shown))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0

