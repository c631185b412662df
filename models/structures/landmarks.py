"""BlazePose's 33 pose landmarks of a batch of people, as the landmark model returns them and the body fit reads
them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch

NUM_LANDMARKS = 33
LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip


@dataclass
class PoseLandmarks:
    """BlazePose's 33 landmarks for B people (left/right are the person's own sides).

    image: B×33×2 frame pixels. visibility, presence: B×33 probabilities (in view and unoccluded; inside the crop).
    world: B×33×3 metres, origin between the hips, axes of the camera (x right, y down, z away from the camera).
    score: B pose-presence probability of the crop. roi_center B×2 and roi_side B: the square region that was read.
    mask: B×M×M probability that each pixel of that region shows the person (BlazePose's segmentation), or None
    when it was not computed; region pixel (i, j) covers frame point roi_center + ((j, i) + 0.5) / M − 0.5) · side.
    """

    image: torch.Tensor
    visibility: torch.Tensor
    presence: torch.Tensor
    world: torch.Tensor
    score: torch.Tensor
    roi_center: torch.Tensor
    roi_side: torch.Tensor
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def _map(self, change: Callable[[torch.Tensor], torch.Tensor]) -> PoseLandmarks:
        """A copy with `change` applied to every tensor that is set."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{name: change(value) for name, value in values.items() if value is not None})

    def index(self, i: slice | torch.Tensor) -> PoseLandmarks:
        """The people selected by a slice, index tensor or boolean mask."""
        return self._map(lambda value: value[i])

    def to(self, device: torch.device | str) -> PoseLandmarks:
        """A copy with every tensor on `device`."""
        return self._map(lambda value: value.to(device))

    @classmethod
    def cat(cls, parts: list[PoseLandmarks]) -> PoseLandmarks:
        """Concatenates batches in order (the mask only when every part has one)."""
        values = {f.name: [getattr(p, f.name) for p in parts] for f in fields(cls)}
        return cls(**{name: None if any(v is None for v in vs) else torch.cat(vs) for name, vs in values.items()})

    @classmethod
    def empty(cls, device: torch.device | str = "cpu", mask_size: int | None = None) -> PoseLandmarks:
        """Landmarks of nobody (with an empty mask of `mask_size` pixels per side when given)."""
        zeros = torch.zeros((0, NUM_LANDMARKS), device=device)
        return cls(
            image=zeros[..., None].repeat(1, 1, 2),
            visibility=zeros,
            presence=zeros,
            world=zeros[..., None].repeat(1, 1, 3),
            score=zeros[:, 0],
            roi_center=torch.zeros((0, 2), device=device),
            roi_side=zeros[:, 0],
            mask=None if mask_size is None else torch.zeros((0, mask_size, mask_size), device=device),
        )
