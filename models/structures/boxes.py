"""Box geometry shared by the detectors, the regressors, the tracker and the file formats (numpy, N×4 rows).

Inside phalanx boxes are `xyxy` float pixels; `xywh` (MOTChallenge files) and `cxcywh` (the Kalman state) exist
only at the edges that need them.
"""
from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` (N×4 xyxy) with every box in `b` (M×4 xyxy): N×M."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.float64), where=union > 0)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """Corner form → centre/size form."""
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + wh / 2, wh], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Centre/size form → corner form."""
    half = boxes[:, 2:] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Top-left/size form (MOTChallenge files) → corner form."""
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Corner form → top-left/size form (MOTChallenge files)."""
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
