"""What the association knows of each detection (cues) and of each track's past (histories)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.structures import Observations

PELVIS = 0


@dataclass
class Cues:
    """Per-detection cues (N rows). `point`: the person's image position (projected pelvis, else the box centre)
    divided by the frame's longer side (`scale`, pixels); `log_depth`: log of the camera distance in metres;
    `pose`: PHALP's pose vector (root and joint rotation matrices and betas, 226 values); `appearance`: an
    embedding (N×E tensor). Any cue but `point` may be None (no stage produced it) or hold NaN rows (not available
    for that detection). `texture` (N×4×S×S tensor) is the sampled UV texture behind a texture descriptor's
    `appearance`, kept for the tracks' texture memories."""

    point: np.ndarray
    log_depth: np.ndarray | None = None
    pose: np.ndarray | None = None
    appearance: torch.Tensor | None = None
    texture: torch.Tensor | None = None
    scale: float = 1.0

    def __len__(self) -> int:
        return len(self.point)

    def observation(self, i: int) -> tuple[np.ndarray, float, np.ndarray | None]:
        """What a track remembers of detection i: its position, log depth (NaN: unknown) and pose vector."""
        log_depth = np.nan if self.log_depth is None else float(self.log_depth[i])
        return self.point[i], log_depth, None if self.pose is None else self.pose[i]


def detection_cues(observations: Observations) -> Cues:
    """Cues of one frame's detections from their boxes, their bodies and their textures and appearance embeddings
    (rows in detection order)."""
    frame, detections, bodies = observations.frame, observations.detections, observations.bodies
    scale = float(max(frame.width, frame.height))
    boxes = detections.boxes
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    appearance, texture = observations.embeddings, observations.textures
    if bodies is None or len(detections) == 0:
        return Cues(point=centre / scale, appearance=appearance, texture=texture, scale=scale)
    pelvis = bodies.joints_2d[:, PELVIS]
    point = np.where(np.isfinite(pelvis), pelvis, centre) / scale
    depth = bodies.cam_t[:, 2]
    log_depth = np.where(depth > 0, np.log(np.maximum(depth, 1e-6)), np.nan)
    pose = None
    if bodies.has_pose.any():
        pose = np.concatenate(
            [
                bodies.smpl_global_orient.reshape(len(detections), -1),
                bodies.smpl_body_pose.reshape(len(detections), -1),
                bodies.smpl_betas,
            ],
            axis=1,
        )
        pose[~bodies.has_pose] = np.nan
    return Cues(point=point, log_depth=log_depth, pose=pose, appearance=appearance, texture=texture, scale=scale)


@dataclass
class CueHistory:
    """A track's last `size` observations of position and log-depth, for PHALP's linear forecast."""

    times: np.ndarray
    values: np.ndarray
    valid: np.ndarray

    @classmethod
    def empty(cls, size: int) -> "CueHistory":
        return cls(np.zeros(size), np.zeros((size, 3)), np.zeros(size, dtype=bool))

    def push(self, time: float, point: np.ndarray, log_depth: float) -> None:
        """Appends an observation, forgetting the oldest."""
        self.times = np.roll(self.times, -1)
        self.values = np.roll(self.values, -1, axis=0)
        self.valid = np.roll(self.valid, -1)
        self.times[-1] = time
        self.values[-1] = (point[0], point[1], log_depth)
        self.valid[-1] = True

    def state_dict(self) -> dict:
        """The history's arrays (for a checkpoint)."""
        return {"times": self.times, "values": self.values, "valid": self.valid}

    @classmethod
    def from_state_dict(cls, state: dict) -> "CueHistory":
        """The history `state_dict` described."""
        return cls(np.array(state["times"]), np.array(state["values"]), np.array(state["valid"], dtype=bool))


@dataclass
class TrackCues:
    """Per-track predictions for the current frame (T rows): forecast `point` (T×2) and `log_depth` (T,) with
    their 95% prediction intervals, and the track's last `pose` (None when no track has one). Appearance is
    compared by the tracks' texture memories (tracker.appearance)."""

    point: np.ndarray
    point_interval: np.ndarray
    log_depth: np.ndarray
    depth_interval: np.ndarray
    pose: np.ndarray | None = None
