"""Merging the detections of several views of one frame into one detection per person.

A person seen by two views appears twice: as two overlapping boxes, or, when a view's window cuts through the
person, as a whole box and a partial one inside it. Both pairs are one person. Every view scores on the same scale
(the network's person probability), so a person's score is the best of its views: a person that only one view can
see (a tile, or the zoomed view for small people) keeps its score instead of being averaged down by the views
that missed it. Its box comes from the view in which it was nearest the height the network is accurate at.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.structures import Detections, iou_matrix

CONTAINED = 0.7  # a cut box whose area lies this much inside another box is a part of that person
BORDER_PX = 2.0  # a box this close to a window side that is not the frame's edge is cut by the window


@dataclass(frozen=True)
class ViewDetections:
    """What one view of a frame found: boxes (N×4 xyxy, frame pixels), scores (N,), the view's window
    (x0, y0, x1, y1) in frame pixels and its scale (network pixels per frame pixel, vertically)."""

    boxes: np.ndarray
    scores: np.ndarray
    window: tuple[int, int, int, int]
    scale: float


def cut_by_window(boxes: np.ndarray, window: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """(N,) bool: boxes touching a side of `window` that lies inside the frame (the person continues beyond)."""
    x0, y0, x1, y1 = window
    return (((boxes[:, 0] <= x0 + BORDER_PX) & (x0 > 0)) | ((boxes[:, 1] <= y0 + BORDER_PX) & (y0 > 0))
            | ((boxes[:, 2] >= x1 - BORDER_PX) & (x1 < width)) | ((boxes[:, 3] >= y1 - BORDER_PX) & (y1 < height)))


def merge_views(views: list[ViewDetections], height: int, width: int, target_height: float,
                iou_threshold: float) -> Detections:
    """One box per person over all views of a height × width frame, by descending score.

    Boxes are visited by descending score; a box joins the first person it overlaps by IoU > iou_threshold, or
    whose box contains it (or is contained in it) by CONTAINED of its area when one of the two is cut by its
    view's window. A person's score is its best member's; its box is the member, among those not cut, whose height
    in its view is nearest `target_height` (a cut member only when all are cut).
    """
    if not views:
        return Detections.empty()
    boxes = np.concatenate([view.boxes for view in views]).astype(np.float32).reshape(-1, 4)
    scores = np.concatenate([view.scores for view in views]).astype(np.float32)
    cut = np.concatenate([cut_by_window(view.boxes.reshape(-1, 4), view.window, height, width) for view in views])
    view_heights = np.concatenate([(view.boxes.reshape(-1, 4)[:, 3] - view.boxes.reshape(-1, 4)[:, 1]) * view.scale
                                   for view in views])
    misfit = np.abs(np.log(np.maximum(view_heights, 1e-3) / target_height)) + cut * 1e3
    order = np.argsort(-scores, kind="stable")
    overlap = iou_matrix(boxes, boxes)
    areas = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    low = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    high = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inside = np.clip(high - low, 0, None).prod(axis=2) / areas[:, None]  # share of the row box inside the column box
    people: list[list[int]] = []
    for index in order:
        for members in people:
            leader = members[0]
            same = overlap[index, leader] > iou_threshold or (
                (cut[index] or cut[leader]) and max(inside[index, leader], inside[leader, index]) >= CONTAINED)
            if same:
                members.append(index)
                break
        else:
            people.append([index])
    chosen = [min(members, key=lambda i: misfit[i]) for members in people]
    best_scores = [scores[members[0]] for members in people]
    return Detections(boxes[chosen].reshape(-1, 4), np.asarray(best_scores, np.float32))
