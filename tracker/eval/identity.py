"""Identity metrics (IDF1, IDP, IDR): one global one-to-one assignment of predicted ids to ground-truth ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from tracker.eval.counts import AdditiveCounts
from tracker.eval.sequence import SequenceData

IOU_THRESHOLD = 0.5
FORBIDDEN = 1e10


@dataclass(frozen=True)
class IdentityCounts(AdditiveCounts):
    """Identity true positives, false negatives and false positives of one or more sequences."""

    idtp: int
    idfn: int
    idfp: int

    def metrics(self) -> dict[str, float]:
        """IDF1, IDP and IDR from the identity counts."""
        return {
            "IDF1": self.idtp / max(1.0, self.idtp + 0.5 * self.idfp + 0.5 * self.idfn),
            "IDP": self.idtp / max(1, self.idtp + self.idfp),
            "IDR": self.idtp / max(1, self.idtp + self.idfn),
        }


def identity_counts(data: SequenceData) -> IdentityCounts:
    """Assign ids so that missed plus false boxes are fewest, a pair counting as hit in frames where IoU >= 0.5."""
    num_gt, num_pred = data.num_gt_ids, data.num_pred_ids
    overlap_frames = np.zeros((num_gt, num_pred))
    gt_frames = np.zeros(num_gt)
    pred_frames = np.zeros(num_pred)
    for gt_ids, pred_ids, ious in data.frames():
        gt_rows, pred_cols = np.nonzero(ious >= IOU_THRESHOLD)
        overlap_frames[gt_ids[gt_rows], pred_ids[pred_cols]] += 1
        gt_frames[gt_ids] += 1
        pred_frames[pred_ids] += 1

    # Rows: gt ids, then one "unassigned" slot per predicted id; columns: predicted ids, then one slot per gt id.
    missed = np.zeros((num_gt + num_pred, num_pred + num_gt))
    missed[:num_gt, :num_pred] = gt_frames[:, None] - overlap_frames
    missed[:num_gt, num_pred:] = np.where(np.eye(num_gt, dtype=bool), gt_frames[:, None], FORBIDDEN)
    false = np.zeros_like(missed)
    false[:num_gt, :num_pred] = pred_frames[None, :] - overlap_frames
    false[num_gt:, :num_pred] = np.where(np.eye(num_pred, dtype=bool), pred_frames[None, :], FORBIDDEN)
    rows, cols = linear_sum_assignment(missed + false)
    idfn = int(round(missed[rows, cols].sum()))
    idfp = int(round(false[rows, cols].sum()))
    return IdentityCounts(idtp=int(gt_frames.sum()) - idfn, idfn=idfn, idfp=idfp)
