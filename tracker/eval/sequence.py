"""Turn a ground-truth file and a results file into per-frame ids and IoU matrices, the input of every metric."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tracker.eval.mot_file import MotBoxes

EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class SequenceData:
    """Per frame: ground-truth and predicted id indices (0-based, contiguous) and their IoU matrix."""

    gt_ids: list[np.ndarray]
    pred_ids: list[np.ndarray]
    ious: list[np.ndarray]
    num_gt_ids: int
    num_pred_ids: int

    def frames(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (gt_ids, pred_ids, ious) for each frame that has any box."""
        return zip(self.gt_ids, self.pred_ids, self.ious)


def box_iou_xywh(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every box in `first` (N, 4) with every box in `second` (M, 4), boxes as continuous x, y, w, h."""
    first_min, first_max = first[:, None, :2], first[:, None, :2] + first[:, None, 2:]
    second_min, second_max = second[None, :, :2], second[None, :, :2] + second[None, :, 2:]
    overlap = np.clip(np.minimum(first_max, second_max) - np.maximum(first_min, second_min), 0.0, None)
    intersection = overlap[..., 0] * overlap[..., 1]
    union = (first[:, None, 2] * first[:, None, 3]) + (second[None, :, 2] * second[None, :, 3]) - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > EPS)


def build_sequence_data(gt: MotBoxes, pred: MotBoxes) -> SequenceData:
    """Group both box sets by frame, relabel ids to 0..K-1 and compute the IoU matrix of each frame."""
    gt_labels, gt_index = np.unique(gt.ids, return_inverse=True)
    pred_labels, pred_index = np.unique(pred.ids, return_inverse=True)
    frames = np.union1d(gt.frames, pred.frames)
    gt_rows = _rows_per_frame(gt.frames, frames)
    pred_rows = _rows_per_frame(pred.frames, frames)
    return SequenceData(
        gt_ids=[gt_index[rows] for rows in gt_rows],
        pred_ids=[pred_index[rows] for rows in pred_rows],
        ious=[box_iou_xywh(gt.boxes[g], pred.boxes[p]) for g, p in zip(gt_rows, pred_rows)],
        num_gt_ids=len(gt_labels),
        num_pred_ids=len(pred_labels),
    )


def _rows_per_frame(row_frames: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """Indices of the rows that belong to each of `frames` (sorted), in file order."""
    order = np.argsort(row_frames, kind="stable")
    sorted_frames = row_frames[order]
    starts = np.searchsorted(sorted_frames, frames, side="left")
    ends = np.searchsorted(sorted_frames, frames, side="right")
    return [order[start:end] for start, end in zip(starts, ends)]
