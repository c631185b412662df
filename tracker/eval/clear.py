"""CLEAR MOT metrics (MOTA, MOTP, ID switches, fragmentations, MT/PT/ML) as TrackEval computes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracker.eval.counts import AdditiveCounts
from tracker.eval.sequence import EPS, SequenceData

IOU_THRESHOLD = 0.5
CONTINUATION_BONUS = 1000.0
MOSTLY_TRACKED_ABOVE = 0.8
MOSTLY_LOST_BELOW = 0.2


@dataclass(frozen=True)
class ClearCounts(AdditiveCounts):
    """Raw CLEAR counts of one or more sequences; `iou_sum` is the summed IoU of all matches."""

    tp: int
    fn: int
    fp: int
    idsw: int
    frag: int
    mt: int
    pt: int
    ml: int
    iou_sum: float

    def metrics(self) -> dict[str, float]:
        """MOTA, MOTP (mean IoU of matches), MOTP_dist (mean 1 - IoU, motmetrics' MOTP) and the counts."""
        matches = max(1, self.tp)
        return {
            "MOTA": (self.tp - self.fp - self.idsw) / max(1, self.tp + self.fn),
            "MOTP": self.iou_sum / matches,
            "MOTP_dist": (self.tp - self.iou_sum) / matches,
            "Recall": self.tp / max(1, self.tp + self.fn),
            "Precision": self.tp / max(1, self.tp + self.fp),
            "TP": self.tp,
            "FP": self.fp,
            "FN": self.fn,
            "IDSW": self.idsw,
            "Frag": self.frag,
            "MT": self.mt,
            "PT": self.pt,
            "ML": self.ml,
        }


def clear_counts(data: SequenceData) -> ClearCounts:
    """Match per frame (IoU >= 0.5, preferring the previous frame's pairs) and count errors along each gt track.

    As in TrackEval, a frame without ground truth or without predictions leaves the previous-frame pairs in place.
    """
    frames_present = np.zeros(data.num_gt_ids, dtype=np.int64)
    frames_matched = np.zeros(data.num_gt_ids, dtype=np.int64)
    tracked_spans = np.zeros(data.num_gt_ids, dtype=np.int64)
    last_matched_pred = np.full(data.num_gt_ids, np.nan)
    previous_frame_pred = np.full(data.num_gt_ids, np.nan)
    tp = fn = fp = idsw = 0
    iou_sum = 0.0
    for gt_ids, pred_ids, ious in data.frames():
        if len(gt_ids) == 0:
            fp += len(pred_ids)
            continue
        frames_present[gt_ids] += 1
        if len(pred_ids) == 0:
            fn += len(gt_ids)
            continue
        continues_pair = pred_ids[None, :] == previous_frame_pred[gt_ids][:, None]
        score = CONTINUATION_BONUS * continues_pair + ious
        score[ious < IOU_THRESHOLD - EPS] = 0.0
        rows, cols = linear_sum_assignment(-score)
        matched = score[rows, cols] > EPS
        rows, cols = rows[matched], cols[matched]
        matched_gt, matched_pred = gt_ids[rows], pred_ids[cols]

        earlier_pred = last_matched_pred[matched_gt]
        idsw += int(np.sum(~np.isnan(earlier_pred) & (earlier_pred != matched_pred)))
        frames_matched[matched_gt] += 1
        was_untracked = np.isnan(previous_frame_pred)
        last_matched_pred[matched_gt] = matched_pred
        previous_frame_pred[:] = np.nan
        previous_frame_pred[matched_gt] = matched_pred
        tracked_spans += was_untracked & ~np.isnan(previous_frame_pred)

        tp += len(rows)
        fn += len(gt_ids) - len(rows)
        fp += len(pred_ids) - len(rows)
        iou_sum += float(ious[rows, cols].sum())

    tracked_ratio = frames_matched[frames_present > 0] / frames_present[frames_present > 0]
    mostly_tracked = int(np.sum(tracked_ratio > MOSTLY_TRACKED_ABOVE))
    partially_tracked = int(np.sum(tracked_ratio >= MOSTLY_LOST_BELOW)) - mostly_tracked
    return ClearCounts(
        tp=tp,
        fn=fn,
        fp=fp,
        idsw=idsw,
        frag=int(np.sum(tracked_spans[tracked_spans > 0] - 1)),
        mt=mostly_tracked,
        pt=partially_tracked,
        ml=data.num_gt_ids - mostly_tracked - partially_tracked,
        iou_sum=iou_sum,
    )
