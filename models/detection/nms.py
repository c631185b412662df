"""Greedy non-maximum suppression, batched over rows (windows or frames) of padded candidate lists.

Sorting and IoU run in torch on the boxes' device; the inherently sequential greedy pass runs on the CPU over
the (small) boolean overlap matrix, which is far cheaper than one device op per candidate.
"""
from __future__ import annotations

import numpy as np
import torch


def pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """(B, N, N) IoU between all boxes of each row; boxes (B, N, 4) as (y0, x0, y1, x1) or (x0, y0, x1, y1).

    A pair with an empty box has IoU 0, as in TensorFlow's NMS.
    """
    area = (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    low = torch.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    high = torch.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    intersection = (high - low).clamp(min=0).prod(-1)
    union = area[:, :, None] + area[:, None, :] - intersection
    empty = (area[:, :, None] <= 0) | (area[:, None, :] <= 0)
    return torch.where(empty, torch.zeros_like(union), intersection / union.clamp(min=1e-12))


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor, iou_threshold: float,
                max_detections: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy NMS per row: visit candidates by descending score (ties: lower index first), keep a box unless
    it overlaps an already kept one by IoU > threshold, stop after `max_detections`.

    boxes (B, N, 4), scores (B, N), valid (B, N) bool. Returns (order, keep): `order` (B, K) indices into N sorted
    by score, `keep` (B, K) bool saying which of them survive; K <= N counts the valid candidates of the fullest row.
    """
    count = int(valid.sum(1).max()) if valid.numel() else 0
    masked = torch.where(valid, scores, torch.full_like(scores, -torch.inf))
    order = torch.sort(masked, dim=1, descending=True, stable=True).indices[:, :count]
    candidate_valid = torch.gather(valid, 1, order)
    candidates = torch.gather(boxes, 1, order[..., None].expand(-1, -1, 4))
    overlaps = (pairwise_iou(candidates) > iou_threshold).cpu().numpy()
    suppressed = ~candidate_valid.cpu().numpy()
    keep = np.zeros_like(suppressed)
    kept_count = np.zeros(boxes.shape[0], dtype=np.int64)
    for i in range(count):
        take = ~suppressed[:, i] & (kept_count < max_detections)
        if take.any():
            keep[:, i] = take
            kept_count += take
            suppressed |= overlaps[:, i, :] & take[:, None]
    return order, torch.from_numpy(keep).to(boxes.device)
