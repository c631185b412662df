"""Weighted box fusion: merge detections of the same frame seen through several views (scales, mirror, tiles).

Boxes that agree across views are averaged (weighted by score), which tightens SSDLite's coarse boxes, and a
box found by only some views is down-weighted, which removes one-view false positives.
"""
from __future__ import annotations

import numpy as np

from models.structures import iou_matrix


def weighted_box_fusion(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, num_views: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Cluster boxes greedily by descending score (a box joins the cluster whose fused box it overlaps most,
    if by IoU > threshold); each cluster gives the score-weighted mean box and score = (sum of its best `num_views`
    scores) / num_views. Returns fused boxes (M, 4) float32 and scores (M,) sorted by descending score."""
    order = np.argsort(-scores, kind="stable")
    fused_boxes: list[np.ndarray] = []
    members: list[list[int]] = []
    for index in order:
        if fused_boxes:
            overlaps = iou_matrix(boxes[index][None], np.asarray(fused_boxes))[0]
            best = int(np.argmax(overlaps))
            if overlaps[best] > iou_threshold:
                members[best].append(index)
                weights = scores[members[best]]
                fused_boxes[best] = (boxes[members[best]] * weights[:, None]).sum(0) / weights.sum()
                continue
        fused_boxes.append(boxes[index].astype(np.float64))
        members.append([index])
    fused_scores = np.array([np.sort(scores[m])[::-1][:num_views].sum() / num_views for m in members])
    out_order = np.argsort(-fused_scores, kind="stable")
    out_boxes = np.asarray(fused_boxes, dtype=np.float32).reshape(-1, 4)[out_order]
    return out_boxes, fused_scores[out_order].astype(np.float32)
