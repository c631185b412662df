"""Association costs between tracks and detections, all pairs of a frame in one array operation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.structures import iou_matrix
from tracker.features import Cues, TrackCues


def location_cost(track_boxes: np.ndarray, det_boxes: np.ndarray) -> np.ndarray:
    """1 − IoU between predicted track boxes and detected boxes: 0 for a perfect overlap, 1 for none."""
    return 1.0 - iou_matrix(track_boxes, det_boxes)


@dataclass(frozen=True)
class PhalpCost:
    """PHALP's association cost (its `EQ_019`), all pairs of a frame at once:

        (1 + β0·dA) · (1 + β1·min(dP, pose_cap)) · exp(dL / ((0.1 + tanh σL)·β2)) · exp(dN / ((0.1 + tanh σN)·β3))

    dA: appearance distance; dP: squared L2 between pose vectors; dL: distance between the track's forecast image
    position and the detection's (in units of the frame's longer side), σL its prediction interval; dN: difference
    of log depths, σN its interval. A cue missing on either side contributes the neutral factor 1. The betas are
    PHALP's fitted values. Matching minimises the sum of log costs (the product), gated at `max_cost`.
    """

    appearance_weight: float = 4.0536
    pose_weight: float = 1.3070
    location_weight: float = 0.3792
    depth_weight: float = 4.1658
    pose_cap: float = 1.5
    max_cost: float = 100.0

    def __call__(self, tracks: TrackCues, detections: Cues, appearance_distance: np.ndarray | None) -> np.ndarray:
        """T×D costs ≥ 1 (log-space matching uses their logarithm)."""
        location = np.linalg.norm(tracks.point[:, None, :] - detections.point[None, :, :], axis=2)
        sigma_location = np.linalg.norm(tracks.point_interval, axis=1)[:, None]
        log_cost = location / ((0.1 + np.tanh(sigma_location)) * self.location_weight)
        if detections.log_depth is not None:
            depth = np.abs(tracks.log_depth[:, None] - detections.log_depth[None, :])
            sigma_depth = np.abs(tracks.depth_interval)[:, None]
            log_cost = log_cost + _neutral(depth / ((0.1 + np.tanh(sigma_depth)) * self.depth_weight))
        if tracks.pose is not None and detections.pose is not None:
            pose = ((tracks.pose[:, None, :] - detections.pose[None, :, :]) ** 2).sum(axis=2)
            log_cost = log_cost + np.log1p(self.pose_weight * _neutral(np.minimum(pose, self.pose_cap)))
        if appearance_distance is not None:
            log_cost = log_cost + np.log1p(self.appearance_weight * _neutral(appearance_distance))
        return np.exp(log_cost)


def _neutral(distance: np.ndarray) -> np.ndarray:
    """Missing (NaN) distances become 0, the value that leaves the product unchanged."""
    return np.where(np.isnan(distance), 0.0, distance)
