"""Soak: does a run stay flat in memory and linear in time as its input grows, and does a 100-person frame go?

Inputs are made from PETS09-S2L1 (real frames, real public detections):
- a MOT sequence folder holding the clip looped --loops times (its frames decoded once to JPEG, then linked again
  for every loop, and its det/det.txt repeated with shifted frame numbers), tracked at 1× and at --loops×;
- a crowd: a 1920×1080 sequence of --crowd-frames frames, each a 10×10 tiling of 100 people cut from PETS09 by
  their ground-truth boxes (frames 1–400), drifting a few pixels per frame, with their boxes as public detections.
Each is tracked by `tools/track.py` (the default configuration plus the overrides, `render=off` unless given) in
its own process through benchmarks/bench_pipeline's wrapper. The 1× and long inputs are tracked --repeats times
each, alternating, because peak RSS of identical runs differs by a few percent (where glibc's heap fragments
depends on allocation order, which Python's per-process hash seed changes); the table gives per input the median
frames/s and peak RSS with their range, the size of the results files, and the ratios of the long medians to the
short ones.

    python -m benchmarks.soak                      # 1× and 10× PETS09 (795 and 7950 frames) ×3 each, the crowd
    python -m benchmarks.soak --loops 3 --repeats 1 --crowd-frames 4
"""

from __future__ import annotations

import argparse
import configparser
import json
import shutil
import statistics
from pathlib import Path

import cv2
import numpy as np

from benchmarks.bench_pipeline import ROOT, Tree, measure
from benchmarks.report import write_report
from tracker.eval import load_mot_file
from tracker.io import load_results, open_source
from tracker.schema import MOT_FILE, RESULTS_FILE, SUMMARY_FILE

SEQUENCE = ROOT.parent / "shared" / "data" / "PETS09-S2L1"
CROWD_SIZE = (1920, 1080)  # width, height
GRID = 10  # people per row and column of the crowd frame


def write_seqinfo(folder: Path, name: str, fps: float, length: int, size: tuple[int, int]) -> None:
    """A MOTChallenge seqinfo.ini for an img1/ folder of JPEG frames."""
    info = configparser.ConfigParser()
    info.optionxform = str
    info["Sequence"] = {
        "name": name, "imDir": "img1", "frameRate": f"{fps:g}", "seqLength": str(length),
        "imWidth": str(size[0]), "imHeight": str(size[1]), "imExt": ".jpg",
    }  # fmt: skip
    with open(folder / "seqinfo.ini", "w") as handle:
        info.write(handle, space_around_delimiters=False)


def looped_sequence(folder: Path, loops: int) -> Path:
    """PETS09-S2L1 played `loops` times as one MOT sequence folder (frames linked, detections repeated)."""
    frames = folder.resolve() / "frames"  # absolute: the links must not depend on the working directory
    if not frames.is_dir():
        frames.mkdir(parents=True)
        for frame in open_source(SEQUENCE):
            cv2.imwrite(str(frames / f"{frame.index:06d}.jpg"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    originals = sorted(frames.iterdir())
    sequence = folder / f"PETS09-S2L1-x{loops}"
    shutil.rmtree(sequence, ignore_errors=True)
    (sequence / "img1").mkdir(parents=True)
    (sequence / "det").mkdir()
    for loop in range(loops):
        for number, image in enumerate(originals, start=1 + loop * len(originals)):
            (sequence / "img1" / f"{number:06d}.jpg").symlink_to(image)
    rows = [line.split(",") for line in (SEQUENCE / "det" / "det.txt").read_text().splitlines() if line.strip()]
    with open(sequence / "det" / "det.txt", "w") as handle:
        for loop in range(loops):
            for row in rows:
                handle.write(",".join([str(int(row[0]) + loop * len(originals)), *row[1:]]) + "\n")
    source = open_source(SEQUENCE)
    write_seqinfo(sequence, sequence.name, source.fps, loops * len(originals), (source.width, source.height))
    return sequence


def crowd_sequence(folder: Path, frames: int, seed: int = 0) -> Path:
    """A 1920×1080 sequence of `frames` frames, each 100 PETS09 people (ground-truth crops) on a 10×10 grid."""
    rng = np.random.default_rng(seed)
    gt = load_mot_file(SEQUENCE / "gt" / "gt.txt", (1, 400), is_gt=True)
    tall = gt.boxes[:, 3] >= 60
    chosen = rng.choice(int(tall.sum()), GRID * GRID, replace=False)
    picks = np.concatenate([gt.frames[tall][chosen, None], gt.boxes[tall][chosen]], axis=1)
    images = {int(f): image for f, image in ((frame.index, frame.image) for frame in open_source(SEQUENCE, end=400))
              if f in set(picks[:, 0].astype(int))}  # fmt: skip
    cell_w, cell_h = CROWD_SIZE[0] // GRID, CROWD_SIZE[1] // GRID
    crops = []
    for frame, x, y, w, h in picks:
        crop = images[int(frame)][max(int(y), 0) : int(y + h), max(int(x), 0) : int(x + w)]
        scale = min(0.9 * cell_h / crop.shape[0], 0.9 * cell_w / crop.shape[1])
        crops.append(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    sequence = folder / "crowd100"
    shutil.rmtree(sequence, ignore_errors=True)
    (sequence / "img1").mkdir(parents=True)
    (sequence / "det").mkdir()
    with open(sequence / "det" / "det.txt", "w") as det:
        for number in range(1, frames + 1):
            canvas = np.full((CROWD_SIZE[1], CROWD_SIZE[0], 3), 96, np.uint8)
            shift = 2 * (number - 1)
            for index, crop in enumerate(crops):
                row, column = divmod(index, GRID)
                x0 = column * cell_w + (cell_w - crop.shape[1]) // 2 + shift
                y0 = row * cell_h + (cell_h - crop.shape[0]) // 2
                canvas[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
                det.write(f"{number},-1,{x0},{y0},{crop.shape[1]},{crop.shape[0]},100,-1,-1,-1\n")
            cv2.imwrite(str(sequence / "img1" / f"{number:06d}.jpg"), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    write_seqinfo(sequence, "crowd100", 7.0, frames, CROWD_SIZE)
    return sequence


def run(name: str, video: Path, runs: Path, overrides: list[str], repeat: int = 0) -> dict:
    """Track `video` in a fresh process: frames, frames/s, peak RSS, output sizes, tracks in the last frame."""
    run_dir = runs / f"{video.name}-{repeat}"
    shutil.rmtree(run_dir, ignore_errors=True)
    usage = measure(Tree("current", ROOT), [f"video={video}", f"hydra.run.dir={run_dir}", *overrides],
                    runs / f"{run_dir.name}.log")  # fmt: skip
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    last = list(load_results(run_dir).frames())[-1]
    return {
        "input": name, "frames": summary["frames"], "fps": summary["fps"], "wall_s": usage["wall_s"],
        "peak_rss_mb": usage["peak_rss_mb"], "results_mb": (run_dir / RESULTS_FILE).stat().st_size / 2**20,
        "mot_mb": (run_dir / MOT_FILE).stat().st_size / 2**20,
        "people_last_frame": int(np.isin(last["states"], ["confirmed"]).sum()),
    }  # fmt: skip


def summarise(name: str, repeats: list[dict]) -> dict:
    """One input's repeated runs as a row: medians of frames/s, wall and peak RSS (with their ranges), the rest
    from the first run (the outputs of identical runs are identical)."""
    row = {**repeats[0], "input": name, "runs": len(repeats)}
    for key in ("fps", "wall_s", "peak_rss_mb"):
        values = [repeat[key] for repeat in repeats]
        row[key], row[f"{key}_range"] = statistics.median(values), [min(values), max(values)]
    row["peak_rss_mb_each"] = [repeat["peak_rss_mb"] for repeat in repeats]
    return row


def spread(row: dict, key: str, digits: int) -> str:
    """`median (min–max)` of a summarised figure, or the value alone for a single run."""
    low, high = row[f"{key}_range"]
    return f"{row[key]:.{digits}f}" + (f" ({low:.{digits}f}–{high:.{digits}f})" if row["runs"] > 1 else "")


def table(rows: list[dict]) -> str:
    """Markdown table, one line per input."""
    lines = [
        "| input | runs | frames | frames/s | wall s | peak RSS MiB | results.phx MiB | tracks.mot.txt MiB "
        "| confirmed in last frame |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['input']} | {row['runs']} | {row['frames']} | {spread(row, 'fps', 2)} "
            f"| {spread(row, 'wall_s', 0)} | {spread(row, 'peak_rss_mb', 0)} | {row['results_mb']:.1f} "
            f"| {row['mot_mb']:.2f} | {row['people_last_frame']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", type=int, default=10, help="the long input is PETS09 this many times")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each PETS09 input (medians are reported)")
    parser.add_argument("--crowd-frames", type=int, default=8, help="frames of the 100-person sequence (0: none)")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "soak", help="inputs and runs go here")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "soak.md")
    parser.add_argument("overrides", nargs="*", default=["render=off"], help="tools/track.py overrides")
    args = parser.parse_args()
    if not (SEQUENCE / "det" / "det.txt").is_file():
        parser.exit(2, f"The soak benchmark needs PETS09-S2L1 at {SEQUENCE}; it is not there.\n")
    if args.loops < 2:
        parser.exit(2, f"--loops must be at least 2, got {args.loops}.\n")
    if args.repeats < 1:
        parser.exit(2, f"--repeats must be at least 1, got {args.repeats}.\n")
    runs = args.work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    inputs = {
        "PETS09 ×1": looped_sequence(args.work, 1),
        f"PETS09 ×{args.loops}": looped_sequence(args.work, args.loops),
    }
    repeats: dict[str, list[dict]] = {name: [] for name in inputs}
    for repeat in range(args.repeats):
        for name, video in inputs.items():
            repeats[name].append(run(name, video, runs, args.overrides, repeat))
    rows = [summarise(name, runs_of) for name, runs_of in repeats.items()]
    if args.crowd_frames:
        crowd = run("100 people, 1920×1080", crowd_sequence(args.work, args.crowd_frames), runs, args.overrides)
        rows.append(summarise(crowd["input"], [crowd]))
    short, long = rows[0], rows[1]
    setup = (
        f"Soak (tools/track.py {' '.join(args.overrides)}, medians of {args.repeats} runs each): PETS09-S2L1 looped "
        f"{args.loops}× against once: peak RSS "
        f"×{long['peak_rss_mb'] / short['peak_rss_mb']:.3f}, frames/s ×{long['fps'] / short['fps']:.3f}, "
        f"results.phx per frame ×{long['results_mb'] / long['frames'] / (short['results_mb'] / short['frames']):.3f}."
    )
    write_report(args.output, setup, table(rows), rows)


if __name__ == "__main__":
    main()
