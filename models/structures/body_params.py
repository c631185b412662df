"""The batched SMPL parameters and cameras a regressor returns, one row per person crop."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from models.structures.landmarks import PoseLandmarks

# Fields that are not one tensor row per person.
_NOT_BATCHED = ("has_pose", "landmarks")


@dataclass
class BodyParams:
    """SMPL parameters and cameras for B people (all tensors share batch size B, device and float32 dtype).

    Conventions:
    - `global_orient` B×1×3×3 and `body_pose` B×23×3×3 are rotation matrices (SMPL joint order, parents first),
      in the camera frame convention of HMR2.0: x right, y down, z forward (away from the camera).
    - `betas` B×10 SMPL shape coefficients.
    - `pred_cam` B×3 weak-perspective crop camera (s, tx, ty): a body point X projects to the crop at normalised
      coordinates s·(X_xy + (tx, ty)) in [-1, 1] across the square crop region of side `box_size`.
    - `cam_t` B×3 translation (metres) of the body in the FULL-FRAME pinhole camera with focal length
      `focal_length` (pixels) and principal point at the image centre; a body point X lands at
      focal·(X + cam_t)_xy / (X + cam_t)_z + image_size / 2 pixels.
    - `focal_length` B pixels, `image_size` B×2 (width, height) pixels of the frame.
    - `has_pose` False when the parameters are a placeholder (template regressor), not an estimate from the image.
    - `landmarks`, `fit_error` B (px) and `reliable` B bool: what a fitting regressor (BlazePose) fitted to, how
      well, and whether the fit was trusted (False where a placeholder body replaced it); None for the others.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    pred_cam: torch.Tensor
    cam_t: torch.Tensor
    focal_length: torch.Tensor
    image_size: torch.Tensor
    has_pose: bool
    landmarks: PoseLandmarks | None = None
    fit_error: torch.Tensor | None = None
    reliable: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.betas.shape[0])

    def tensors(self) -> dict[str, torch.Tensor]:
        """The per-person tensor fields that are set, by name."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_BATCHED}
        return {name: value for name, value in values.items() if value is not None}

    def to(self, device: torch.device | str) -> BodyParams:
        """A copy with every tensor on `device`."""
        moved = {name: value.to(device) for name, value in self.tensors().items()}
        return replace(self, **moved, landmarks=None if self.landmarks is None else self.landmarks.to(device))

    def index(self, i: int | slice | torch.Tensor) -> BodyParams:
        """The people selected by an int, slice, index tensor or boolean mask; an int keeps a batch of one."""
        if isinstance(i, int):
            i = slice(i, i + 1 if i != -1 else None)
        picked = {name: value[i] for name, value in self.tensors().items()}
        return replace(self, **picked, landmarks=None if self.landmarks is None else self.landmarks.index(i))

    @classmethod
    def cat(cls, parts: list[BodyParams]) -> BodyParams:
        """Concatenates batches in order; all parts must agree on `has_pose` and on which fields they set."""
        if len({p.has_pose for p in parts}) != 1:
            raise ValueError("BodyParams.cat got parts that disagree on has_pose.")
        names = parts[0].tensors().keys()
        if any(p.tensors().keys() != names or (p.landmarks is None) != (parts[0].landmarks is None) for p in parts):
            raise ValueError("BodyParams.cat got parts that set different fields.")
        landmarks = None if parts[0].landmarks is None else PoseLandmarks.cat([p.landmarks for p in parts])
        return cls(
            **{n: torch.cat([getattr(p, n) for p in parts]) for n in names},
            has_pose=parts[0].has_pose,
            landmarks=landmarks,
        )
