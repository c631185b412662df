"""HOTA (Luiten et al. 2021): detection, association and localisation accuracy averaged over IoU thresholds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracker.eval.counts import AdditiveCounts
from tracker.eval.sequence import EPS, SequenceData

ALPHAS = np.arange(0.05, 0.99, 0.05)
TINY = 1e-10


@dataclass(frozen=True)
class HotaCounts(AdditiveCounts):
    """Per-threshold (one entry per alpha) sums of one or more sequences; association sums are TP-weighted."""

    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray
    iou_sum: np.ndarray
    ass_a_sum: np.ndarray
    ass_re_sum: np.ndarray
    ass_pr_sum: np.ndarray

    def metrics(self) -> dict[str, float]:
        """HOTA and its sub-metrics, each averaged over the alpha thresholds."""
        det_a = self.tp / np.maximum(1, self.tp + self.fn + self.fp)
        ass_a = self.ass_a_sum / np.maximum(1, self.tp)
        per_alpha = {
            "HOTA": np.sqrt(det_a * ass_a),
            "DetA": det_a,
            "AssA": ass_a,
            "DetRe": self.tp / np.maximum(1, self.tp + self.fn),
            "DetPr": self.tp / np.maximum(1, self.tp + self.fp),
            "AssRe": self.ass_re_sum / np.maximum(1, self.tp),
            "AssPr": self.ass_pr_sum / np.maximum(1, self.tp),
            "LocA": np.maximum(TINY, self.iou_sum) / np.maximum(TINY, self.tp),
        }
        return {name: float(np.mean(values)) for name, values in per_alpha.items()}


def hota_counts(data: SequenceData) -> HotaCounts:
    """Match each frame by IoU weighted with the ids' global alignment, then count per alpha threshold."""
    alignment = _global_alignment(data)
    num_alphas = len(ALPHAS)
    tp = np.zeros(num_alphas)
    fn = np.zeros(num_alphas)
    fp = np.zeros(num_alphas)
    iou_sum = np.zeros(num_alphas)
    pair_matches = np.zeros((num_alphas, data.num_gt_ids, data.num_pred_ids))
    for gt_ids, pred_ids, ious in data.frames():
        if len(gt_ids) == 0 or len(pred_ids) == 0:
            fn += len(gt_ids)
            fp += len(pred_ids)
            continue
        rows, cols = linear_sum_assignment(-(alignment[np.ix_(gt_ids, pred_ids)] * ious))
        matched_iou = ious[rows, cols]
        passes = matched_iou[None, :] >= ALPHAS[:, None] - EPS
        num_matches = passes.sum(axis=1)
        tp += num_matches
        fn += len(gt_ids) - num_matches
        fp += len(pred_ids) - num_matches
        iou_sum += (passes * matched_iou[None, :]).sum(axis=1)
        pair_matches[:, gt_ids[rows], pred_ids[cols]] += passes

    gt_frames, pred_frames = _frames_per_id(data)
    pair_union = gt_frames[None, :, None] + pred_frames[None, None, :] - pair_matches
    return HotaCounts(
        tp=tp,
        fn=fn,
        fp=fp,
        iou_sum=iou_sum,
        ass_a_sum=(pair_matches**2 / np.maximum(1, pair_union)).sum(axis=(1, 2)),
        ass_re_sum=(pair_matches**2 / np.maximum(1, gt_frames)[None, :, None]).sum(axis=(1, 2)),
        ass_pr_sum=(pair_matches**2 / np.maximum(1, pred_frames)[None, None, :]).sum(axis=(1, 2)),
    )


def _frames_per_id(data: SequenceData) -> tuple[np.ndarray, np.ndarray]:
    """Number of frames in which each ground-truth id and each predicted id has a box."""
    gt_frames = np.bincount(np.concatenate([np.zeros(0, np.int64), *data.gt_ids]), minlength=data.num_gt_ids)
    pred_frames = np.bincount(np.concatenate([np.zeros(0, np.int64), *data.pred_ids]), minlength=data.num_pred_ids)
    return gt_frames.astype(np.float64), pred_frames.astype(np.float64)


def _global_alignment(data: SequenceData) -> np.ndarray:
    """Soft, sequence-wide Jaccard overlap of every (gt id, predicted id) pair, used to weight the frame matching."""
    overlap = np.zeros((data.num_gt_ids, data.num_pred_ids))
    for gt_ids, pred_ids, ious in data.frames():
        denominator = ious.sum(axis=0)[None, :] + ious.sum(axis=1)[:, None] - ious
        soft_iou = np.divide(ious, denominator, out=np.zeros_like(ious), where=denominator > EPS)
        overlap[np.ix_(gt_ids, pred_ids)] += soft_iou
    gt_frames, pred_frames = _frames_per_id(data)
    return overlap / (gt_frames[:, None] + pred_frames[None, :] - overlap)
