"""A stand-in regressor without weights: the body model's mean (rest) pose, placed in depth from the box height.

It makes no pose estimate (BodyParams.has_pose is False, name "template"); it exists so the whole pipeline runs
without the HMR2.0 checkpoint. Placement: the body stands upright facing the camera, its vertical extent fills the
box height (depth = focal · body height / box height) and its centre lies on the box centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from models.camera import cam_crop_to_full, full_frame_focal_length
from models.regressors.base import Regressor
from models.structures import DEFAULT_CROP_SPEC, BodyParams, CropSpec, InputError, PersonBatch

NUM_BODY_JOINTS = 23
NUM_BETAS = 10
# SMPL's canonical frame has y up and faces +z; HMR2.0's camera has y down and looks along +z: turn by π about x.
UPRIGHT_FACING_CAMERA = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


def template_pose(batch: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The template's SMPL inputs (rotation matrices): upright global orientation, rest body pose, zero betas."""
    return {
        "global_orient": UPRIGHT_FACING_CAMERA.to(device).expand(batch, 1, 3, 3).clone(),
        "body_pose": torch.eye(3, device=device).expand(batch, NUM_BODY_JOINTS, 3, 3).clone(),
        "betas": torch.zeros(batch, NUM_BETAS, device=device),
    }


class TemplateRegressor(Regressor):
    """Mean-pose bodies sized to their boxes. body_height_m and body_center_m (x, y, z of the middle of the
    template's vertex bounding box, in the body model's output frame for `template_pose`) describe the body model."""

    name = "template"
    needs_pixels = False

    def __init__(
        self,
        body_height_m: float,
        body_center_m: Sequence[float],
        focal_length: float = 5000.0,
        crop_spec: CropSpec = DEFAULT_CROP_SPEC,
    ) -> None:
        if not body_height_m > 0:
            raise InputError(f"TemplateRegressor needs a positive body height, got {body_height_m}.")
        self.body_height_m = float(body_height_m)
        self.body_center_m = tuple(float(v) for v in body_center_m)
        self.focal_length = focal_length
        self.crop_spec = crop_spec

    @classmethod
    def from_body_model(cls, body_model: Any, **kwargs: Any) -> TemplateRegressor:
        """Measures the template on `body_model`, an smplx SMPL layer or anything with its call signature
        (global_orient, body_pose, betas as rotation matrices, pose2rot=False) returning `.vertices` B×V×3."""
        device = next(iter(body_model.buffers())).device
        with torch.no_grad():
            vertices = body_model(**template_pose(1, device), pose2rot=False).vertices[0]
        low, high = vertices.min(dim=0).values, vertices.max(dim=0).values
        return cls(float(high[1] - low[1]), ((low + high) / 2).tolist(), **kwargs)

    def predict(self, crops: PersonBatch, frames: Sequence[np.ndarray] | None = None) -> BodyParams:
        device = crops.crops.device
        boxes, center, size, image_size = (
            t.to(device, torch.float32) for t in (crops.boxes, crops.center, crops.size, crops.image_size)
        )
        box_height = (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0)
        scale = 2 * box_height / (size * self.body_height_m)
        offset = -torch.tensor(self.body_center_m[:2], device=device).expand(len(crops), 2)
        pred_cam = torch.cat([scale[:, None], offset], dim=1)
        focal = full_frame_focal_length(image_size, self.focal_length, self.crop_spec.size)
        cam_t = cam_crop_to_full(pred_cam, center, size, image_size, focal)
        pose = template_pose(len(crops), device)
        return BodyParams(
            pose["global_orient"], pose["body_pose"], pose["betas"], pred_cam, cam_t, focal, image_size, has_pose=False
        )
