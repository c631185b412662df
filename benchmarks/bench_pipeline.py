"""Whole-pipeline benchmark: the README's default run and the plain video, this tree beside a baseline revision.

Usage: python -m benchmarks.bench_pipeline [--baseline REV] [--repeats 3] [--end N] [--sweep] [--runs DIR]
       [--data ../shared/data] [--configs pets09 video] [--output outputs/bench_pipeline.md] [key=value ...]

Runs `python tools/track.py` (PETS09-S2L1: public detections, BlazePose bodies, overlay on) and
`python tools/track.py video=.../PETS09-S2L1/vtest.avi` (the plain video, the shipped detector) --repeats times
each, every run in a fresh process with its own run folder; key=value overrides go to every run. The video paths are
passed absolute (`video=DATA/...`), so a baseline tree runs on the same files. Each run goes through a small
wrapper process whose only child is the run, so its CPU seconds (user + system) and peak RSS are that run's own
(`getrusage(RUSAGE_CHILDREN)` of the wrapper; the run's own children, if any, are included). Reported per
configuration: frames/s and ms per frame of each stage from the run's summary.json (the pipeline loop, after the
models are loaded), wall seconds of the whole process, CPU seconds, peak RSS: medians over the repeats. When the
runs cover frames 1-400 (--end unset or ≥ 400), HOTA and IDF1 on frames 1-400 against PETS09's gt/gt.txt are added
(the same evaluator, this tree's, for every column).

--baseline REV checks REV out into a temporary git worktree (removed afterwards) and runs the same commands there
(cwd and PYTHONPATH in that worktree), alternating baseline and current runs so that load on a shared machine
falls on both; its columns stand beside this tree's in one table. --sweep also times a Hydra sweep of 2 identical
runs (`-m tracker.n_init=3,3 render=off`) with hydra/launcher=joblib (--sweep-jobs jobs at once) against the same
sweep with the basic launcher (one run after the other): wall and CPU seconds of the whole command (joblib's
workers included) and each job's frames/s.
Prints the table and writes it to --output (markdown) with a .json beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import write_report
from tracker.eval import evaluate_sequence
from tracker.schema import MOT_FILE, SUMMARY_FILE

ROOT = Path(__file__).resolve().parents[1]
EVAL_FRAMES = (1, 400)
CONFIGS = {  # name: (column title, video below --data)
    "pets09": ("PETS09 default", "PETS09-S2L1"),
    "video": ("plain video", "PETS09-S2L1/vtest.avi"),
}
GT = "PETS09-S2L1/gt/gt.txt"
# The wrapper: runs argv[2:] with its output in the file argv[1] and prints the child's exit status, wall seconds,
# CPU seconds and peak RSS (ru_maxrss is in KiB on Linux) as JSON.
PROBE = (
    "import json, resource, subprocess, sys, time\n"
    "with open(sys.argv[1], 'w') as log:\n"
    "    start = time.perf_counter()\n"
    "    code = subprocess.run(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).returncode\n"
    "    wall = time.perf_counter() - start\n"
    "use = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'returncode': code, 'wall_s': wall, 'cpu_s': use.ru_utime + use.ru_stime,\n"
    "                  'peak_rss_mb': use.ru_maxrss / 1024}))\n"
)


@dataclass
class Tree:
    """A source tree the commands run in: this checkout or a baseline worktree."""

    label: str
    root: Path
    runs: list[dict] = field(default_factory=list)


def measure(tree: Tree, args: list[str], log: Path) -> dict:
    """Runs `python tools/track.py ARGS` in `tree` through the wrapper; its wall/CPU seconds and peak RSS."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree.root), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-c", PROBE, str(log), sys.executable, "tools/track.py", *args]
    probe = subprocess.run(command, cwd=tree.root, env=env, capture_output=True, text=True, check=True)
    usage = json.loads(probe.stdout)
    if usage.pop("returncode"):
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"{tree.label}: tools/track.py {' '.join(args)} failed: {' / '.join(tail)}")
    return usage


def track_run(tree: Tree, config: str, video: Path, run_dir: Path, end: int | None, overrides: list[str]) -> dict:
    """One tracking run: the wrapper's figures, the run's summary.json and, when it covers them, the metrics."""
    args = [f"video={video}", f"hydra.run.dir={run_dir}", *([f"end={end}"] if end is not None else []), *overrides]
    run_dir.mkdir(parents=True)
    usage = measure(tree, args, run_dir.parent / f"{run_dir.name}.log")
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    run = {"config": config, **usage, "frames": summary["frames"], "fps": summary["fps"]}
    run["stage_ms"] = {name: 1000 * s / summary["frames"] for name, s in summary["stage_seconds"].items()}
    run["total_ms"] = 1000 * summary["seconds"] / summary["frames"]
    return run


def sweep_run(tree: Tree, video: Path, sweep_dir: Path, end: int | None, launcher: list[str]) -> dict:
    """One sweep of 2 identical runs (render off) with the given launcher overrides: wall and CPU seconds of the
    command, and each job's frames/s (its pipeline loop, from its summary.json)."""
    args = ["-m", *launcher, "tracker.n_init=3,3", "render=off", f"video={video}", f"hydra.sweep.dir={sweep_dir}"]
    args += [f"end={end}"] if end is not None else []
    sweep_dir.mkdir(parents=True)
    usage = measure(tree, args, sweep_dir.parent / f"{sweep_dir.name}.log")
    summaries = [json.loads(path.read_text()) for path in sorted(sweep_dir.glob(f"*/{SUMMARY_FILE}"))]
    return {**usage, "jobs_fps": [summary["fps"] for summary in summaries]}


def evaluate(run_dir: Path, gt: Path) -> dict[str, float]:
    """HOTA and IDF1 (in %) of one run on frames 1-400."""
    metrics = evaluate_sequence(gt, run_dir / MOT_FILE, EVAL_FRAMES)
    return {"HOTA": 100 * metrics["HOTA"], "IDF1": 100 * metrics["IDF1"]}


def git(*args: str) -> str:
    """The output of a git command in this repository."""
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def short_commit(rev: str) -> str | None:
    """The abbreviated commit REV names, or None when it names none."""
    try:
        return git("rev-parse", "--short", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        return None


@contextmanager
def baseline_worktree(rev: str, commit: str, folder: Path) -> Iterator[Tree]:
    """The commit checked out (detached) into `folder`, removed afterwards."""
    git("worktree", "add", "--detach", str(folder), commit)
    try:
        yield Tree(f"{rev} ({commit})", folder)
    finally:
        git("worktree", "remove", "--force", str(folder))


def median(runs: list[dict], key: str) -> float | None:
    """The median of one figure over the runs that have it."""
    values = [run[key] for run in runs if run.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(tree: Tree, config: str) -> dict:
    """Medians over the repeats of one configuration in one tree."""
    runs = [run for run in tree.runs if run["config"] == config]
    row = {"tree": tree.label, "config": config, "repeats": len(runs)}
    for key in ("frames", "fps", "total_ms", "wall_s", "cpu_s", "peak_rss_mb", "HOTA", "IDF1"):
        row[key] = median(runs, key)
    stages = dict.fromkeys(name for run in runs for name in run["stage_ms"])
    row["stage_ms"] = {name: statistics.median(run["stage_ms"].get(name, 0.0) for run in runs) for name in stages}
    row["runs"] = runs
    return row


def table(rows: list[dict]) -> str:
    """One markdown table: a row per figure, a column per (configuration, tree)."""
    stages = list(dict.fromkeys(name for row in rows for name in row["stage_ms"]))
    lines = [
        ("frames", "frames", ".0f"),
        ("frames/s (pipeline loop)", "fps", ".2f"),
        ("ms/frame, all stages", "total_ms", ".1f"),
        *((f"ms/frame {name}", name, ".1f") for name in stages),
        ("wall s, whole process", "wall_s", ".1f"),
        ("CPU s, whole process", "cpu_s", ".1f"),
        ("peak RSS MiB", "peak_rss_mb", ".0f"),
        (f"HOTA % (frames {EVAL_FRAMES[0]}-{EVAL_FRAMES[1]})", "HOTA", ".2f"),
        (f"IDF1 % (frames {EVAL_FRAMES[0]}-{EVAL_FRAMES[1]})", "IDF1", ".2f"),
    ]
    out = ["| median of repeats | " + " | ".join(f"{CONFIGS[r['config']][0]}: {r['tree']}" for r in rows) + " |"]
    out.append("|---|" + "---:|" * len(rows))
    for title, key, fmt in lines:
        cells = [row["stage_ms"].get(key) if key in stages else row[key] for row in rows]
        if all(cell is None for cell in cells):
            continue
        out.append(f"| {title} | " + " | ".join("-" if c is None else format(c, fmt) for c in cells) + " |")
    return "\n".join(out)


def sweep_table(sweeps: list[dict], jobs: int) -> str:
    """The sweep timings: a row per launcher, a column per tree."""
    heading = " | ".join(f"{s['tree']}: wall s / CPU s / jobs' frames/s" for s in sweeps)
    out = [f"| sweep of 2 runs (render off) | {heading} |", "|---|" + "---:|" * len(sweeps)]
    for title, key in ((f"joblib, {jobs} jobs at once", "joblib"), ("basic launcher, one after the other", "basic")):
        cells = [
            f"{s[key]['wall_s']:.1f} / {s[key]['cpu_s']:.1f} / {', '.join(f'{f:.2f}' for f in s[key]['jobs_fps'])}"
            for s in sweeps
        ]
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="a git revision to run beside this tree (e.g. HEAD~1); none by default")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration and tree (median reported)")
    parser.add_argument("--end", type=int, default=None, help="last frame of every run (default: the whole video)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--sweep", action="store_true", help="also time a joblib sweep of 2 runs against 2 in a row")
    parser.add_argument("--sweep-jobs", type=int, default=2, help="hydra.launcher.n_jobs of the joblib sweep")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    parser.add_argument("--runs", type=Path, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_pipeline.md")
    parser.add_argument("overrides", nargs="*", help="tools/track.py overrides for every run (key=value)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}.")
    commit = short_commit(args.baseline) if args.baseline else None
    if args.baseline and commit is None:
        parser.error(f"--baseline {args.baseline} is not a revision of {ROOT}.")
    if args.runs is not None and args.runs.exists() and any(args.runs.iterdir()):
        parser.error(f"--runs {args.runs} is not empty.")
    data = args.data.resolve()
    videos = {name: data / CONFIGS[name][1] for name in args.configs}
    sweep_video = data / CONFIGS["pets09"][1]
    missing = [str(path) for path in dict.fromkeys([*videos.values(), sweep_video]) if not path.exists()]
    if missing:
        parser.error(f"missing input {', '.join(missing)}: pass --data, the folder holding PETS09-S2L1.")
    evaluated = (args.end is None or args.end >= EVAL_FRAMES[1]) and (data / GT).exists()

    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    current = Tree(f"this tree ({git('rev-parse', '--short', 'HEAD')}{dirty})", ROOT)
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as scratch:
        runs = (args.runs or Path(scratch) / "runs").resolve()
        worktree = baseline_worktree(args.baseline, commit, Path(scratch) / "baseline") if commit else nullcontext()
        with worktree as base:
            trees = [base, current] if base is not None else [current]
            for repeat in range(args.repeats):
                for config, video in videos.items():
                    for tree in trees:
                        run_dir = runs / f"{config}-{repeat}-{'base' if tree is base else 'current'}"
                        run = track_run(tree, config, video, run_dir, args.end, args.overrides)
                        if evaluated:
                            run.update(evaluate(run_dir, data / GT))
                        tree.runs.append(run)
            sweeps = []
            if args.sweep:
                for tree in trees:
                    name = "base" if tree is base else "current"
                    sweep = {"tree": tree.label}
                    for key, launcher in (
                        ("joblib", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.sweep_jobs}"]),
                        ("basic", []),
                    ):
                        sweep[key] = sweep_run(tree, sweep_video, runs / f"sweep-{key}-{name}", args.end, launcher)
                    sweeps.append(sweep)
    rows = [summarise(tree, config) for config in videos for tree in trees]
    frames = "the whole video" if args.end is None else f"frames 1-{args.end}"
    setup = (
        f"tools/track.py on {frames}, {args.repeats} run(s) per column, each a fresh process"
        f"{' ' + ' '.join(args.overrides) if args.overrides else ''}; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end. PETS09 default: public detections, BlazePose bodies, overlay on; "
        f"plain video: vtest.avi with the default detector."
    )
    if not evaluated:
        setup += f" HOTA/IDF1 need frames {EVAL_FRAMES[0]}-{EVAL_FRAMES[1]} (--end ≥ {EVAL_FRAMES[1]}) and {GT}."
    report = table(rows) + ("\n\n" + sweep_table(sweeps, args.sweep_jobs) if sweeps else "")
    write_report(args.output, setup, report, rows + [{"sweep": sweep} for sweep in sweeps])


if __name__ == "__main__":
    main()
