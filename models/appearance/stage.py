"""The appearance stage of a window: each person's appearance embedding, from their crop and person mask (learned
embedders) or from the UV texture sampled through their posed mesh (texture descriptors)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from models.appearance.embedding import CropEmbedder
from models.appearance.encoder import AppearanceEncoder
from models.structures import Bodies, CropSpec, Frame
from models.texture.sampler import TextureSampler


class AppearanceStage:
    """Embeddings (B×E) and, for texture descriptors, the UV textures (B×4×S×S) of all people of a window, in the
    bodies' crop order."""

    def __init__(
        self, encoder: AppearanceEncoder | CropEmbedder, crop_spec: CropSpec, sampler: TextureSampler | None = None
    ) -> None:
        if encoder.needs_textures and sampler is None:
            raise ValueError("A texture descriptor needs a texture sampler.")
        self.encoder = encoder
        self.crop_spec = crop_spec
        self.sampler = sampler

    @torch.inference_mode()
    def run(self, frames: Sequence[Frame], bodies: Bodies) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(textures or None, embeddings) of the window's people."""
        if not self.encoder.needs_textures:
            return None, self.encoder.embed([f.image for f in frames], bodies.people, bodies.params.landmarks)
        if bodies.vertices is None:
            raise ValueError("The texture stage needs the bodies' posed meshes (BodyEstimator.pose_meshes).")
        textures = self.sampler.sample_crops(bodies.people, bodies.params, bodies.vertices, self.crop_spec)
        return textures, self.encoder.encode(textures)
