"""Detections of a window of frames → posed bodies: crops, regressor, body model and projection, batched."""
from __future__ import annotations

from typing import Sequence

import torch

from models.body import BodyModel
from models.camera import project
from models.crops import make_crops, resample_to_crops
from models.regressors import Regressor
from models.structures import Bodies, Detections, Frame

MESH_BATCH = 32  # people posed per pass of the body model in pose_meshes


class BodyEstimator:
    """Runs a regressor on every detected person of a window and poses the body model with its output.

    Runs under no_grad rather than inference mode: fitting regressors optimise with gradients of their own.
    `pixels` keeps image crops even when the regressor needs none (for the texture stage); when the regressor
    segments its people (BlazePose's person mask), the crops get the mask as a fourth channel, which keeps the
    texture stage's samples on the person.
    """

    def __init__(
        self,
        regressor: Regressor,
        body_model: BodyModel,
        device: str | torch.device = "cpu",
        pixels: bool = False,
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
        landmarks = params.landmarks
        if landmarks is not None and landmarks.mask is not None and crops.crops.shape[1] == 3 and len(crops):
            mask = resample_to_crops(landmarks.mask[:, None], landmarks.roi_center, landmarks.roi_side, crops)
            crops.crops = torch.cat([crops.crops, mask], dim=1)
        joints = self.body_model.joints(params.global_orient, params.body_pose, params.betas, transl=params.cam_t)
        joints_2d = project(joints, torch.zeros_like(params.cam_t), params.focal_length, params.image_size)
        return Bodies(
            people=crops,
            params=params,
            joints_3d=joints,
            joints_2d=joints_2d,
            vertices=None,
            frame_ids=crops.frame_ids.cpu().numpy(),
            det_ids=crops.det_ids.cpu().numpy(),
        )

    @torch.no_grad()
    def pose_meshes(self, bodies: Bodies) -> None:
        """Poses every body's mesh in the full-frame camera (`bodies.vertices`), once per window for every stage
        that samples or draws meshes; skinning costs ten times the joints, so only runs that need it call this."""
        params = bodies.params
        vertices = torch.empty((len(params.betas), self.body_model.num_vertices, 3), device=params.betas.device)
        # Skinning holds a 4×4 transform per vertex: posed MESH_BATCH people at a time, memory stays flat however
        # many people a window holds.
        for start in range(0, len(vertices), MESH_BATCH):
            people = slice(start, start + MESH_BATCH)
            posed = self.body_model(params.global_orient[people], params.body_pose[people], params.betas[people],
                                    transl=params.cam_t[people])  # fmt: skip
            vertices[people] = posed.vertices
        bodies.vertices = vertices
