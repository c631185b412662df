"""Detections of a window of frames → posed bodies: crops, regressor, body model and projection, batched."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from models.body import BodyModel
from models.body_params import BodyParams
from models.camera import project
from models.crops import PersonBatch, make_crops
from models.detection.base import Detections
from models.hmr2 import Regressor
from tracker.io.frames import Frame

BODY_KEYS = (
    "smpl_global_orient",
    "smpl_body_pose",
    "smpl_betas",
    "cam_t",
    "focal_length",
    "joints_3d",
    "joints_2d",
    "has_pose",
)


@dataclass
class Bodies:
    """All people of a window, in crop order: parameters and joints in the full-frame camera.

    joints_3d B×24×3 are metres in the camera frame (x right, y down, z forward, cam_t applied); joints_2d B×24×2
    are frame pixels. frame_ids/det_ids say which frame of the window and which detection; `people` holds the
    crops (with pixels only when asked for). Meshes are posed only by the stages that need them
    (`BodyModel.forward` on `params`), since skinning costs ten times the joints.
    """

    people: PersonBatch
    params: BodyParams
    joints_3d: torch.Tensor
    joints_2d: torch.Tensor
    frame_ids: np.ndarray
    det_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.params)

    def frame_rows(self, frame: int) -> np.ndarray:
        """Rows of the batch that belong to one window frame, in detection order."""
        rows = np.flatnonzero(self.frame_ids == frame)
        return rows[np.argsort(self.det_ids[rows])]

    def frame_arrays(self, frame: int, count: int) -> dict[str, np.ndarray]:
        """Per-detection arrays of one window frame (rows in detection order, `count` detections): the
        `BODY_KEYS`, then the regressor's extras."""
        order = self.frame_rows(frame)
        if len(order) != count:
            raise ValueError(f"Window frame {frame} has {count} detections but {len(order)} bodies.")
        p = self.params
        pick = torch.as_tensor(order, dtype=torch.long, device=p.betas.device)
        def as_numpy(t: torch.Tensor) -> np.ndarray:
            picked = t[pick].detach().cpu()
            return picked.numpy() if picked.dtype == torch.bool else picked.float().numpy()

        reliable = as_numpy(p.extras["reliable"]) if "reliable" in p.extras else np.ones(len(order), dtype=bool)
        return {
            "smpl_global_orient": as_numpy(p.global_orient),
            "smpl_body_pose": as_numpy(p.body_pose),
            "smpl_betas": as_numpy(p.betas),
            "cam_t": as_numpy(p.cam_t),
            "focal_length": as_numpy(p.focal_length),
            "joints_3d": as_numpy(self.joints_3d),
            "joints_2d": as_numpy(self.joints_2d),
            "has_pose": np.full(len(order), p.has_pose) & reliable,
            **{key: as_numpy(value) for key, value in p.extras.items()},
        }


class BodyEstimator:
    """Runs a regressor on every detected person of a window and poses the body model with its output.

    Runs under no_grad rather than inference mode: fitting regressors optimise with gradients of their own.

    `pixels` keeps image crops even when the regressor needs none (for the texture stage).
    """

    def __init__(
        self, regressor: Regressor, body_model: BodyModel, device: str | torch.device = "cpu", pixels: bool = False
    ) -> None:
        self.regressor = regressor
        self.body_model = body_model.to(device)
        self.device = torch.device(device)
        self.pixels = pixels or regressor.needs_pixels

    @torch.no_grad()
    def estimate(self, frames: Sequence[Frame], detections: Sequence[Detections]) -> Bodies:
        """Bodies for all detections of the window (an empty batch when nobody was detected)."""
        crops = make_crops(
            [f.image for f in frames],
            [d.boxes for d in detections],
            spec=self.regressor.crop_spec,
            device=self.device,
            pixels=self.pixels,
        )
        params = self.regressor.predict(crops, [f.image for f in frames])
        joints = self.body_model.joints(params.global_orient, params.body_pose, params.betas, transl=params.cam_t)
        joints_2d = project(joints, torch.zeros_like(params.cam_t), params.focal_length, params.image_size)
        return Bodies(
            people=crops,
            params=params,
            joints_3d=joints,
            joints_2d=joints_2d,
            frame_ids=crops.frame_ids.cpu().numpy(),
            det_ids=crops.det_ids.cpu().numpy(),
        )
