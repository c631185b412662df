"""Ablation of the tracker's cues on PETS09-S2L1 frames 1-400, for both detection sources.

Each row adds one cue to the row above it, from the 2D tracker (Kalman + IoU, no filling) to the default
configuration; two reference rows follow: the 2D tracker with gap filling (`tracker=default`), and the same with
the learned appearance's gate, the one cue of the default that the 2D tracker can take alone. Every row is a real
`tools/track.py end=400 render=off` run, scored with the project's evaluator against the ground truth of frames
1-400 (MOT15 rules): HOTA, AssA, IDF1, ID switches, MOTA and the run's wall time.

    python -m benchmarks.ablation                          # both sources, every row (about 25 min on 2 quiet cores)
    python -m benchmarks.ablation --sources public --rows motion location
    python -m benchmarks.ablation --reuse                  # score the run folders of an earlier run again

Sources: `public` is the sequence folder (its det/det.txt, rank-calibrated scores); `video` is vtest.avi with the
shipped detector (SSDLite). The runs are kept under --runs (one folder per source and row).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import write_report
from tracker.eval import evaluate_sequence, locate_results_file

ROOT = Path(__file__).resolve().parents[1]
SEQUENCE = ROOT.parent / "shared" / "data" / "PETS09-S2L1"
FRAMES = (1, 400)
NO_FILLING = ["output.max_gap=0"]
NO_REID = ["tracker.reid=null"]
NO_CUES = ["regressor=template", "appearance=none"]
GATED_2D = ("tracker=default", "tracker.appearance_gate=1.0", "appearance=mobilenet")


@dataclass(frozen=True)
class Row:
    """One configuration of the ablation: a short key, what it adds, and its overrides of the default config."""

    key: str
    label: str
    overrides: tuple[str, ...]


ROWS = (
    Row("motion", "motion only (Kalman + IoU)", ("tracker=default", *NO_CUES, *NO_FILLING)),
    Row("location", "+ 3D location and depth (PHALP cost)", (*NO_CUES, *NO_REID, *NO_FILLING)),
    Row("pose", "+ 3D pose (BlazePose bodies)", ("regressor=blazepose", "appearance=none", *NO_REID, *NO_FILLING)),
    Row("colour", "+ appearance: colour on the UV texture", ("appearance=colour", *NO_REID, *NO_FILLING)),
    Row("mobilenet", "+ appearance: masked MobileNetV2, not colour", ("appearance=mobilenet", *NO_REID, *NO_FILLING)),
    Row("reid", "+ re-identification of lost tracks", ("appearance=mobilenet", *NO_FILLING)),
    Row("gaps", "+ gap filling: the default configuration", ()),
    Row("motion_gaps", "reference: motion only + gap filling (tracker=default)", ("tracker=default", *NO_CUES)),
    Row("gate_gaps", "reference: motion only + appearance gate (mobilenet) + gap filling", GATED_2D),
)  # fmt: skip
SOURCES = {"public": [f"video={SEQUENCE}"], "video": [f"video={SEQUENCE / 'vtest.avi'}"]}


def run_row(source: str, row: Row, folder: Path, reuse: bool) -> float | None:
    """Track frames 1-400 with the row's overrides into `folder`; the wall seconds, or None when reused."""
    if reuse and locate_results_file(folder).exists():
        return None
    command = [
        sys.executable, str(ROOT / "tools" / "track.py"), *SOURCES[source], f"end={FRAMES[1]}", "render=off",
        *row.overrides, f"hydra.run.dir={folder}",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{source}/{row.key} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


def table(rows: list[dict]) -> str:
    """Markdown table: one line per source and row."""
    lines = [
        "| source | configuration | overrides | HOTA | AssA | IDF1 | IDSW | MOTA | run s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.0f}"
        overrides = " ".join(f"`{item}`" for item in row["overrides"]) or "(none)"
        lines.append(
            f"| {row['source']} | {row['label']} | {overrides} | {row['HOTA']:.1f} | {row['AssA']:.1f} "
            f"| {row['IDF1']:.1f} | {row['IDSW']} | {row['MOTA']:.1f} | {seconds} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", nargs="+", choices=list(SOURCES), default=list(SOURCES))
    parser.add_argument("--rows", nargs="+", choices=[row.key for row in ROWS], default=[row.key for row in ROWS])
    parser.add_argument("--runs", type=Path, default=ROOT / "outputs" / "ablation", help="run folders go here")
    parser.add_argument("--reuse", action="store_true", help="score existing run folders instead of running again")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "ablation.md")
    args = parser.parse_args()
    gt = SEQUENCE / "gt" / "gt.txt"
    if not gt.exists():
        parser.exit(2, f"The ablation needs PETS09-S2L1's ground truth at {gt}; it is not there.\n")

    results = []
    for source in args.sources:
        for row in (row for row in ROWS if row.key in args.rows):
            folder = args.runs / source / row.key
            seconds = run_row(source, row, folder, args.reuse)
            metrics = evaluate_sequence(gt, locate_results_file(folder), FRAMES)
            results.append(
                {
                    "source": source, "row": row.key, "label": row.label, "overrides": list(row.overrides),
                    "seconds": seconds, "IDSW": int(metrics["IDSW"]),
                    **{name: 100 * metrics[name] for name in ("HOTA", "AssA", "IDF1", "MOTA")},
                }
            )  # fmt: skip
    setup = (
        f"Cue ablation, PETS09-S2L1 frames {FRAMES[0]}-{FRAMES[1]} (MOT15 rules), `tools/track.py end=400 render=off` "
        "plus the overrides; public = det/det.txt, video = vtest.avi with the shipped detector."
    )
    write_report(args.output, setup, table(results), results)


if __name__ == "__main__":
    main()
