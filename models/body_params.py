"""The batched SMPL parameters and cameras a regressor returns, one row per person crop."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch


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
    - `extras` per-person tensors (first dimension B) a regressor adds, e.g. landmarks and a `reliable` flag
      (False where a placeholder body replaced an untrustworthy estimate).
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    pred_cam: torch.Tensor
    cam_t: torch.Tensor
    focal_length: torch.Tensor
    image_size: torch.Tensor
    has_pose: bool
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.betas.shape[0])

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensor fields by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("has_pose", "extras")}

    def to(self, device: torch.device | str) -> BodyParams:
        """A copy with every tensor on `device`."""
        moved = {name: value.to(device) for name, value in self.tensors().items()}
        return replace(self, **moved, extras={k: v.to(device) for k, v in self.extras.items()})

    def index(self, i: int | slice | torch.Tensor) -> BodyParams:
        """The people selected by an int, slice, index tensor or boolean mask; an int keeps a batch of one."""
        if isinstance(i, int):
            i = slice(i, i + 1 if i != -1 else None)
        picked = {name: value[i] for name, value in self.tensors().items()}
        return replace(self, **picked, extras={k: v[i] for k, v in self.extras.items()})

    @classmethod
    def cat(cls, parts: list[BodyParams]) -> BodyParams:
        """Concatenates batches in order; all parts must agree on `has_pose`."""
        if len({p.has_pose for p in parts}) != 1:
            raise ValueError("BodyParams.cat got parts that disagree on has_pose.")
        names = parts[0].tensors().keys()
        extras = {k: torch.cat([p.extras[k] for p in parts]) for k in parts[0].extras}
        return cls(
            **{n: torch.cat([getattr(p, n) for p in parts]) for n in names}, has_pose=parts[0].has_pose, extras=extras
        )
