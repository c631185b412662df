"""Summary of a Hydra multirun sweep of `tools/track.py`: every run evaluated against its labelled clip, one row per
run (its overrides, HOTA, AssA, IDF1, IDSW, MOTA, fps; failed runs with their error), written as CSV and markdown,
and PNG plots of each metric against each swept parameter."""
from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import add
from pathlib import Path

from hydra.errors import CompactHydraException
from omegaconf import OmegaConf

from models.structures import InputError
from tracker.eval import COUNT_METRICS, count_sequence, load_mot_file, locate_gt_file
from tracker.eval.evaluate import SequenceCounts
from tracker.schema import HYDRA_FOLDER, MOT_FILE, RESOLVED_CONFIG_FILE, SUMMARY_FILE

TABLE_METRICS = ("HOTA", "AssA", "IDF1", "IDSW", "MOTA")
CSV_METRICS = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDSW", "Frag", "FP", "FN")
PLOT_COLUMNS = (*TABLE_METRICS, "fps")
COMBINED = "COMBINED"
_LOG_LINE = re.compile(r"^\[[^\]]*\]\[[^\]]*\]\[ERROR\] - (?P<message>.*)$")


class RunFailed(CompactHydraException):
    """Raised by a run of a multirun sweep that failed on bad input: Hydra completes the other runs, then prints
    this one sentence (no traceback) and exits non-zero."""


@dataclass
class SweepRun:
    """One run folder of a sweep: its overrides, input, outcome and (once evaluated) metrics."""

    run_dir: Path
    overrides: dict[str, str]
    video: Path | None
    start: int
    end: int | None
    ran: bool = True  # False when the run left no tracks.mot.txt
    error: str = ""
    fps: float | None = None
    frames: int | None = None
    seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    counts: SequenceCounts | None = None

    @property
    def status(self) -> str:
        """The outcome: failed (the run did not finish), not evaluated (no metrics, see `error`) or ok."""
        if not self.ran:
            return "failed"
        return "not evaluated" if self.error else "ok"

    @property
    def name(self) -> str:
        return self.run_dir.name


def find_runs(sweep_dir: str | Path) -> list[SweepRun]:
    """The run folders of a multirun directory (those holding `.hydra/overrides.yaml`), in job order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise InputError(f"Sweep directory {sweep_dir} does not exist.")
    folders = [path.parent.parent for path in sweep_dir.glob("**/.hydra/overrides.yaml")]
    if not folders:
        raise InputError(f"Sweep directory {sweep_dir} holds no run folders (none has .hydra/overrides.yaml).")
    folders.sort(key=lambda run: [int(part) if part.isdigit() else part for part in run.relative_to(sweep_dir).parts])
    return [_read_run(folder) for folder in folders]


def swept_keys(runs: Sequence[SweepRun]) -> list[str]:
    """Override keys whose value differs between runs, in the order they first appear."""
    keys: list[str] = []
    for run in runs:
        keys.extend(key for key in run.overrides if key not in keys)
    return [key for key in keys if len({run.overrides.get(key) for run in runs}) > 1]


def evaluate_runs(
    runs: Sequence[SweepRun], gt: str | Path | None = None, frames: tuple[int, int] | None = None
) -> None:
    """Evaluate each successful run in place against `gt` (or its video's MOT folder `gt/gt.txt`) over `frames`
    (default: the frames both the run and the ground truth cover); a run that cannot be evaluated gets an error."""
    for run in runs:
        if not run.ran:
            continue
        gt_file = locate_gt_file(gt) if gt is not None else _gt_beside(run.video)
        if gt_file is None:
            run.error = f"no ground truth found for video {run.video} (give --gt)"
            continue
        try:
            span = frames if frames is not None else _common_frames(run, gt_file)
            run.counts = count_sequence(gt_file, run.run_dir / MOT_FILE, span)
        except InputError as error:
            run.error = str(error)
            continue
        run.metrics = run.counts.metrics()


def combined_runs(runs: Sequence[SweepRun], keys: Sequence[str]) -> list[SweepRun]:
    """One row per setting of the swept keys other than `video`, with counts summed over its videos (the videos
    of a setting must all be evaluated; otherwise the row carries the failure)."""
    groups: dict[tuple, list[SweepRun]] = {}
    others = [key for key in keys if key != "video"]
    for run in runs:
        groups.setdefault(tuple(run.overrides.get(key, "") for key in others), []).append(run)
    combined = []
    for setting, members in groups.items():
        overrides = {**dict(zip(others, setting)), "video": COMBINED}
        row = SweepRun(Path("+".join(m.name for m in members)), overrides, None, 1, None)
        missing = [m.name for m in members if m.status != "ok"]
        if missing:
            row.error = f"run(s) {', '.join(missing)} have no metrics"
        else:
            row.counts = reduce(add, [m.counts for m in members])
            row.metrics = row.counts.metrics()
            if all(m.seconds and m.frames for m in members):
                row.frames = sum(m.frames for m in members)
                row.seconds = sum(m.seconds for m in members)
                row.fps = row.frames / row.seconds
        combined.append(row)
    return combined


def markdown_table(runs: Sequence[SweepRun], keys: Sequence[str]) -> str:
    """A markdown table: run, swept keys, status, HOTA/AssA/IDF1/MOTA (%), IDSW, fps, and the error if any."""
    header = ["run", *keys, "status", *TABLE_METRICS, "fps", "error"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        cells = [run.name, *(run.overrides.get(key, "") for key in keys), run.status]
        cells += [_format_metric(name, run.metrics.get(name)) for name in TABLE_METRICS]
        cells += [f"{run.fps:.1f}" if run.fps else "", run.error.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(runs: Sequence[SweepRun], path: str | Path) -> None:
    """One CSV row per run: folder, every override, status, the metrics (fractions and counts), fps, error."""
    keys: list[str] = []
    for run in runs:
        keys.extend(key for key in run.overrides if key not in keys)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", *keys, "status", *CSV_METRICS, "fps", "frames", "error"])
        for run in runs:
            metrics = [run.metrics.get(name, "") for name in CSV_METRICS]
            writer.writerow([
                str(run.run_dir), *(run.overrides.get(key, "") for key in keys), run.status,
                *metrics, "" if run.fps is None else f"{run.fps:.3f}", "" if run.frames is None else run.frames,
                run.error,
            ])  # fmt: skip


def plot_metrics(runs: Sequence[SweepRun], keys: Sequence[str], out_dir: str | Path) -> list[Path]:
    """For each swept key, one PNG with a panel per metric (HOTA, AssA, IDF1, IDSW, MOTA, fps) against the key's
    values, one line per setting of the other swept keys; runs without metrics leave gaps."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("Sweep plots need matplotlib: `pip install matplotlib`, or ask for tables only.") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    written = []
    for key in keys:
        values = _sorted_values({run.overrides.get(key, "") for run in runs})
        position = {value: index for index, value in enumerate(values)}
        others = [other for other in keys if other != key]
        lines: dict[str, list[SweepRun]] = {}
        for run in runs:
            label = ", ".join(f"{other}={run.overrides.get(other, '')}" for other in others) or key
            lines.setdefault(label, []).append(run)
        figure, axes = pyplot.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
        for axis, column in zip(axes.flat, PLOT_COLUMNS):
            for label, members in lines.items():
                members = sorted(members, key=lambda run: position[run.overrides.get(key, "")])
                xs = [position[run.overrides.get(key, "")] for run in members]
                ys = [_plot_value(run, column) for run in members]
                axis.plot(xs, ys, marker="o", label=label)
            axis.set_title(column + (" (%)" if column in TABLE_METRICS and column not in COUNT_METRICS else ""))
            axis.set_xticks(range(len(values)), values, rotation=30 if max(map(len, values)) > 6 else 0)
            axis.set_xlabel(key)
            axis.grid(alpha=0.3)
        if len(lines) > 1:
            axes.flat[0].legend(fontsize="small")
        path = Path(out_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', key)}.png"
        figure.savefig(path, dpi=100)
        pyplot.close(figure)
        written.append(path)
    return written


def summarize_sweep(
    sweep_dir: str | Path,
    out_dir: str | Path | None = None,
    gt: str | Path | None = None,
    frames: tuple[int, int] | None = None,
    plots: bool = True,
) -> tuple[str, list[Path]]:
    """Evaluate a sweep and write `sweep.csv`, `sweep.md` and the plots into `out_dir` (default SWEEP_DIR/summary);
    returns the markdown text and the written paths. Several videos add combined rows per setting."""
    runs = find_runs(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else Path(sweep_dir) / "summary"
    out_dir.mkdir(parents=True, exist_ok=True)
    evaluate_runs(runs, gt, frames)
    keys = swept_keys(runs)
    shown = runs
    text = markdown_table(runs, keys)
    if "video" in keys:
        shown = combined_runs(runs, keys)
        setting_keys = [key for key in keys if key != "video"]
        text += "\n\nCombined over the videos of each setting:\n\n" + markdown_table(shown, setting_keys)
    constant = {key: value for key, value in runs[0].overrides.items() if key not in keys}
    if constant:
        text = "Common overrides: " + " ".join(f"`{key}={value}`" for key, value in constant.items()) + "\n\n" + text
    write_csv(runs, out_dir / "sweep.csv")
    (out_dir / "sweep.md").write_text(text + "\n", encoding="utf-8")
    written = [out_dir / "sweep.csv", out_dir / "sweep.md"]
    if plots:
        written += plot_metrics(shown, [key for key in keys if key != "video"], out_dir)
    return text, written


def run_input_path(folder: Path, video: str | None) -> Path | None:
    """A run's input path, a relative one taken from the folder the run was started in (hydra.runtime.cwd)."""
    if video is None:
        return None
    path = Path(str(video))
    hydra_file = folder / HYDRA_FOLDER / "hydra.yaml"
    if not path.is_absolute() and hydra_file.is_file():
        cwd = OmegaConf.select(OmegaConf.load(hydra_file), "hydra.runtime.cwd")
        if cwd:
            path = Path(cwd) / path
    return path


def _read_run(folder: Path) -> SweepRun:
    overrides = {}
    for line in OmegaConf.to_container(OmegaConf.load(folder / HYDRA_FOLDER / "overrides.yaml")):
        key, _, value = str(line).partition("=")
        overrides[key.lstrip("+~")] = value
    config_file = folder / RESOLVED_CONFIG_FILE
    config = OmegaConf.load(config_file if config_file.is_file() else folder / HYDRA_FOLDER / "config.yaml")
    run = SweepRun(
        folder, overrides, run_input_path(folder, config.get("video")), int(config.get("start", 1)), config.get("end")
    )
    if not (folder / MOT_FILE).is_file():
        run.ran = False
        run.error = _last_logged_error(folder) or f"no {MOT_FILE} and no ERROR line in the run's log"
        return run
    summary_file = folder / SUMMARY_FILE
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        run.fps, run.frames, run.seconds = summary.get("fps"), summary.get("frames"), summary.get("seconds")
    return run


def _last_logged_error(folder: Path) -> str:
    """The message of the last ERROR record in the run's log files (Hydra's `[time][logger][ERROR] - msg`)."""
    message = ""
    for log_file in sorted(folder.glob("*.log")):
        for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _LOG_LINE.match(line)
            if match:
                message = match.group("message").strip()
    return message


def _gt_beside(video: Path | None) -> Path | None:
    """`gt/gt.txt` of the MOT folder the video is (or lies in), if there is one."""
    if video is None:
        return None
    for folder in (video, video.parent):
        candidate = locate_gt_file(folder) if folder.is_dir() else None
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _common_frames(run: SweepRun, gt_file: Path) -> tuple[int, int]:
    """The frames both the run (start..end) and the ground truth (first..last labelled frame) cover."""
    gt_frames = load_mot_file(gt_file, is_gt=True).frames
    if len(gt_frames) == 0:
        raise InputError(f"Ground-truth file {gt_file} has no boxes to evaluate.")
    first = max(run.start, int(gt_frames.min()))
    last = min(run.end if run.end is not None else math.inf, int(gt_frames.max()))
    if last < first:
        raise InputError(f"Run frames {run.start}-{run.end} do not overlap the ground truth of {gt_file}.")
    return first, int(last)


def _format_metric(name: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:d}" if name in COUNT_METRICS else f"{100 * value:.1f}"


def _plot_value(run: SweepRun, column: str) -> float:
    if run.status != "ok":
        return math.nan
    if column == "fps":
        return run.fps if run.fps is not None else math.nan
    value = run.metrics[column]
    return float(value) if column in COUNT_METRICS else 100 * value


def _sorted_values(values: set[str]) -> list[str]:
    """Override values sorted numerically when they all are numbers, else as text."""
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    if all(number(value) is not None for value in values):
        return sorted(values, key=float)
    return sorted(values)
