"""Person detection benchmark on PETS09-S2L1 (development frames 1-400): AP@0.5, recall at 90% precision, ms/frame.

Scores every detector configuration given (default: all of CONFIGURATIONS) and the public detections det/det.txt
the same way, prints a table and writes it, with the raw numbers, to --output (markdown) and a .json beside it.

    python -m benchmarks.bench_detection                       # all configurations, frames 1-400, CPU
    python -m benchmarks.bench_detection --configs plain_300 tiles_2x2 --frames 100

Matching: per frame, detections by descending score take the unmatched ground-truth box of highest IoU >= 0.5;
unmatched detections that overlap an ignored ground-truth box (conf == 0) by IoU >= 0.5 are dropped, not
counted as false positives. AP is the area under the interpolated precision/recall curve (all points).
ms/frame is the wall time of `detect` alone (decoding excluded) per batch, on this machine's CPU threads: the
median over batches and the best batch (on a shared machine the best batch is the least disturbed one).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from models.detection.ssdlite.detector import SSDLiteDetector
from models.structures import iou_matrix
from tracker.io.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
SEQUENCE = ROOT.parent / "shared" / "data" / "PETS09-S2L1"
IOU_THRESHOLD = 0.5
TARGET_PRECISION = 0.9
EVAL_SCORE_THRESHOLD = 0.05

CONFIGURATIONS: dict[str, dict] = {
    "plain_300": {},
    "input_384x512": {"input_sizes": [[384, 512]]},
    "300+384x512": {"input_sizes": [[300, 300], [384, 512]]},
    "300+384x512+mirror": {"input_sizes": [[300, 300], [384, 512]], "mirror": True},
    "tiles_2x2": {"tiles": [2, 2], "tile_overlap": 0.3},
    "tiles_2x3": {"tiles": [2, 3], "tile_overlap": 0.25},
    "plain_300+refine (default)": {"refine": True},
    "plain_300+refine_224": {"refine": True, "refine_input_size": 224},
    "plain_300+refine_ctx2": {"refine": True, "refine_context": 2.0},
    "plain_300+refine_128": {"refine": True, "refine_input_size": 128},
    "plain_300+refine_128_ctx1.4": {"refine": True, "refine_input_size": 128, "refine_context": 1.4},
    "plain_300+refine_144": {"refine": True, "refine_input_size": 144},
    "plain_300+refine_min0.2": {"refine": True, "refine_min_score": 0.2},
}


def read_mot_boxes(file: Path, last_frame: int) -> dict[int, list[tuple[np.ndarray, float]]]:
    """MOT rows by frame as (xyxy box in 0-based pixels, column 7) for frames <= last_frame."""
    rows: dict[int, list[tuple[np.ndarray, float]]] = {}
    for values in np.loadtxt(file, delimiter=",", ndmin=2):
        frame = int(values[0])
        if frame <= last_frame:
            x, y, w, h = values[2:6]
            rows.setdefault(frame, []).append((np.array([x - 1, y - 1, x - 1 + w, y - 1 + h]), float(values[6])))
    return rows


def match_frame(boxes: np.ndarray, scores: np.ndarray, gt: np.ndarray, ignored: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(scores, is_true_positive) of the counted detections of one frame."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    ious = iou_matrix(boxes, gt)
    ignored_ious = iou_matrix(boxes, ignored)
    taken = np.zeros(len(gt), bool)
    counted, positive = [], []
    for i in range(len(boxes)):
        candidates = np.where(~taken & (ious[i] >= IOU_THRESHOLD))[0] if len(gt) else np.array([], int)
        if len(candidates):
            taken[candidates[np.argmax(ious[i, candidates])]] = True
            counted.append(i)
            positive.append(True)
        elif not (len(ignored) and ignored_ious[i].max() >= IOU_THRESHOLD):
            counted.append(i)
            positive.append(False)
    return scores[counted], np.array(positive, bool)


def score_detections(detections: dict[int, tuple[np.ndarray, np.ndarray]], gt_rows: dict, frames: range) -> dict:
    """AP@0.5 and recall at 90% precision over `frames` (detections: frame -> (boxes xyxy, scores))."""
    all_scores, all_positive, num_gt = [], [], 0
    for frame in frames:
        rows = gt_rows.get(frame, [])
        gt = np.array([box for box, conf in rows if conf != 0]).reshape(-1, 4)
        ignored = np.array([box for box, conf in rows if conf == 0]).reshape(-1, 4)
        num_gt += len(gt)
        boxes, scores = detections.get(frame, (np.zeros((0, 4)), np.zeros(0)))
        frame_scores, positive = match_frame(np.asarray(boxes).reshape(-1, 4), np.asarray(scores), gt, ignored)
        all_scores.append(frame_scores)
        all_positive.append(positive)
    scores, positive = np.concatenate(all_scores), np.concatenate(all_positive)
    positive = positive[np.argsort(-scores, kind="stable")]
    true_positives = np.cumsum(positive)
    recall = true_positives / max(num_gt, 1)
    precision = true_positives / np.arange(1, len(positive) + 1)
    envelope = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1][:-1]
    recall_steps = np.diff(np.concatenate([[0.0], recall]))
    at_precision = recall[precision >= TARGET_PRECISION]
    return {
        "ap50": float((envelope * recall_steps).sum()),
        "recall_at_p90": float(at_precision.max()) if len(at_precision) else 0.0,
        "max_recall": float(recall.max()) if len(recall) else 0.0,
        "num_gt": num_gt,
    }


def run_detector(name: str, options: dict, frames: range, batch_size: int, device: str
                 ) -> tuple[dict, dict[str, float]]:
    """Detections of one configuration on the selected frames, and ms/frame of `detect`: the median over
    batches and the best batch (the machine is shared, so the best batch is the least disturbed one)."""
    thresholds = instantiate(OmegaConf.load(ROOT / "configs" / "detector" / "ssdlite.yaml").thresholds)
    detector = SSDLiteDetector(thresholds, device=device, score_threshold=EVAL_SCORE_THRESHOLD,
                               batch_size=batch_size, **options)
    source = open_source(SEQUENCE, start=frames.start, end=frames.stop - 1)
    detections, per_frame_ms = {}, []
    detector.detect(next(source.windows(1)))  # warm-up: first-call allocations are not per-frame costs
    for window in source.windows(batch_size):
        started = time.perf_counter()
        results = detector.detect(window)
        per_frame_ms.append(1000 * (time.perf_counter() - started) / len(window))
        for frame, result in zip(window, results):
            detections[frame.index] = (result.boxes, result.scores)
    timing = {"ms_per_frame_median": float(np.median(per_frame_ms)), "ms_per_frame_best": float(min(per_frame_ms))}
    print(f"  {name}: {timing['ms_per_frame_median']:.1f} ms/frame median, {timing['ms_per_frame_best']:.1f} best",
          flush=True)
    return detections, timing


def format_table(results: list[dict]) -> str:
    lines = ["| configuration | AP@0.5 | recall @ 90% precision | max recall | ms/frame median | ms/frame best |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        timing = [f"{r[k]:.1f}" if k in r else "-" for k in ("ms_per_frame_median", "ms_per_frame_best")]
        lines.append(f"| {r['name']} | {r['ap50']:.3f} | {r['recall_at_p90']:.3f} | {r['max_recall']:.3f} | "
                     f"{timing[0]} | {timing[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGURATIONS), choices=list(CONFIGURATIONS))
    parser.add_argument("--frames", type=int, default=400, help="score frames 1..N (ground truth covers 1-400)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_detection.md")
    args = parser.parse_args()
    if not SEQUENCE.is_dir():
        raise SystemExit(f"PETS09-S2L1 not found at {SEQUENCE}; this benchmark needs the shared data folder.")

    frames = range(1, min(args.frames, 400) + 1)
    gt_rows = read_mot_boxes(SEQUENCE / "gt" / "gt.txt", frames.stop - 1)
    public = {frame: (np.array([b for b, _ in rows]), np.array([s for _, s in rows]))
              for frame, rows in read_mot_boxes(SEQUENCE / "det" / "det.txt", frames.stop - 1).items()}
    results = [{"name": "public det/det.txt", "options": None, **score_detections(public, gt_rows, frames)}]
    print(f"Detecting on PETS09-S2L1 frames 1-{frames.stop - 1}, {torch.get_num_threads()} CPU threads:")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    header = (f"PETS09-S2L1 frames 1-{frames.stop - 1}, device {args.device}, {torch.get_num_threads()} threads, "
              f"batch {args.batch_size}, detector score threshold {EVAL_SCORE_THRESHOLD}\n\n")
    for name in args.configs:
        detections, timing = run_detector(name, CONFIGURATIONS[name], frames, args.batch_size, args.device)
        results.append({"name": f"ssdlite {name}", "options": CONFIGURATIONS[name], **timing,
                        **score_detections(detections, gt_rows, frames)})
        print(format_table(results[-1:]).splitlines()[-1], flush=True)
        args.output.write_text(header + format_table(results) + "\n")  # rewritten after each configuration
        args.output.with_suffix(".json").write_text(json.dumps(results, indent=2))
    print(format_table(results))
    print(f"Wrote {args.output} and {args.output.with_suffix('.json')}")


if __name__ == "__main__":
    main()
