"""The appearance stage of a window: posed meshes → UV textures sampled from the crops → embeddings."""
from __future__ import annotations

import torch

from models.appearance.encoder import AppearanceEncoder
from models.body import BodyModel
from models.body_estimation import Bodies
from models.crops import CropSpec
from models.texture.sampler import TextureSampler


class AppearanceStage:
    """Textures (B×4×S×S) and embeddings (B×E) of all people of a window, in the bodies' crop order."""

    def __init__(
        self, body_model: BodyModel, sampler: TextureSampler, encoder: AppearanceEncoder, crop_spec: CropSpec
    ) -> None:
        self.body_model = body_model
        self.sampler = sampler
        self.encoder = encoder
        self.crop_spec = crop_spec

    @torch.inference_mode()
    def run(self, bodies: Bodies) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples every person's texture from its crop (the crops must carry pixels) and encodes it."""
        params = bodies.params
        vertices = self.body_model(params.global_orient, params.body_pose, params.betas).vertices
        textures = self.sampler.sample_crops(bodies.people, params, vertices, self.crop_spec)
        return textures, self.encoder.encode(textures)
