"""The appearance stage of a window: posed meshes → UV textures sampled from the crops → embeddings."""
from __future__ import annotations

import torch

from models.appearance.encoder import AppearanceEncoder
from models.structures import Bodies, CropSpec
from models.texture.sampler import TextureSampler


class AppearanceStage:
    """Textures (B×4×S×S) and embeddings (B×E) of all people of a window, in the bodies' crop order."""

    def __init__(self, sampler: TextureSampler, encoder: AppearanceEncoder, crop_spec: CropSpec) -> None:
        self.sampler = sampler
        self.encoder = encoder
        self.crop_spec = crop_spec

    @torch.inference_mode()
    def run(self, bodies: Bodies) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples every person's texture from its crop (the crops must carry pixels, the bodies their posed
        meshes) and encodes it."""
        if bodies.vertices is None:
            raise ValueError("The appearance stage needs the bodies' posed meshes (BodyEstimator meshes=True).")
        textures = self.sampler.sample_crops(bodies.people, bodies.params, bodies.vertices, self.crop_spec)
        return textures, self.encoder.encode(textures)
