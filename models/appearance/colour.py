"""Weight-free appearance: the mean CIELAB colour of each body part's visible texels, compared part by part.

UV textures put each body part at fixed texels whatever the viewpoint, so a part's colour can be compared between
a person seen from the front and from the side, using only the parts seen in both. Embedding: for each part, its
mean L*, a*, b* over visible texels and its visible fraction (P×4 values, flattened).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from models.appearance.encoder import AppearanceEncoder
from models.appearance.memory import VISIBLE
from models.appearance.parts import texel_part_labels
from models.body.body_model import BodyModel
from models.structures import InputError

# sRGB primaries (linear RGB) to CIE XYZ under the D65 white, and that white.
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_D65_WHITE = (0.95047, 1.0, 1.08883)
_LAB_EPSILON = (6.0 / 29.0) ** 3
_VALUES_PER_PART = 4  # L*, a*, b*, visible fraction


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65) of sRGB colours in [0, 1] along dim 1 (B×3×...): L* in [0, 100], a* and b* about ±100."""
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp(min=0) + 0.055) / 1.055) ** 2.4)
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    white = torch.tensor(_D65_WHITE, dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,bj...->bi...", matrix / white[:, None], linear)
    f = torch.where(xyz > _LAB_EPSILON, xyz.clamp(min=_LAB_EPSILON) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


class ColourDescriptor(AppearanceEncoder):
    """Per-body-part mean colour (CIELAB) of the visible texels; distance: a visibility-weighted mean over the parts
    seen in both people of 1 − exp(−ΔE / colour_scale), with ΔE the part's colour difference."""

    def __init__(
        self,
        texel_parts: torch.Tensor,
        part_names: Sequence[str],
        min_visible_fraction: float = 0.05,
        colour_scale: float = 20.0,
        lightness_weight: float = 0.5,
    ) -> None:
        """`texel_parts` S×S: each texel's index into `part_names` (-1: ignored). A part counts as seen when at
        least `min_visible_fraction` of its texels are visible. `colour_scale` is the ΔE (CIELAB units) at which a
        part's distance reaches 1 − 1/e; `lightness_weight` scales L* differences, below 1 to soften shading."""
        if texel_parts.ndim != 2 or texel_parts.shape[0] != texel_parts.shape[1]:
            raise InputError(f"ColourDescriptor texel parts must be a square S×S map, got {tuple(texel_parts.shape)}.")
        if not 0 < min_visible_fraction <= 1 or not colour_scale > 0 or not lightness_weight >= 0:
            raise InputError(
                "ColourDescriptor needs 0 < min_visible_fraction <= 1, colour_scale > 0 and lightness_weight >= 0, "
                f"got {min_visible_fraction}, {colour_scale} and {lightness_weight}."
            )
        self.part_names = tuple(part_names)
        self.uv_size = int(texel_parts.shape[0])
        flat = texel_parts.reshape(-1).long()
        self.texel_index = (flat >= 0).nonzero().squeeze(1)
        self.texel_part = flat[self.texel_index]
        counts = torch.bincount(self.texel_part, minlength=len(self.part_names))
        if len(counts) != len(self.part_names) or (counts == 0).any():
            raise InputError(f"ColourDescriptor: every part of {self.part_names} must own at least one texel.")
        self.part_texel_count = counts.float()
        self.min_visible_fraction = float(min_visible_fraction)
        self.colour_scale = float(colour_scale)
        self.lightness_weight = float(lightness_weight)

    @classmethod
    def from_body_model(
        cls, body_model: BodyModel, uv_size: int, parts: Mapping[str, Sequence[str]], **kwargs: Any
    ) -> ColourDescriptor:
        """A descriptor for `body_model`'s UV layout at uv_size² with `parts` (name -> SMPL joint names)."""
        return cls(texel_part_labels(body_model, uv_size, parts), list(parts), **kwargs)

    @property
    def embedding_size(self) -> int:
        return _VALUES_PER_PART * len(self.part_names)

    def encode(self, textures: torch.Tensor) -> torch.Tensor:
        """B×(4·P) embeddings: per part, mean L*, a*, b* of its visible texels (0 when none) and visible fraction."""
        if textures.ndim != 4 or textures.shape[1:] != (4, self.uv_size, self.uv_size):
            raise InputError(
                f"ColourDescriptor expected B×4×{self.uv_size}×{self.uv_size} textures, got {tuple(textures.shape)}."
            )
        batch, parts = textures.shape[0], len(self.part_names)
        texel_index, texel_part = self.texel_index.to(textures.device), self.texel_part.to(textures.device)
        texels = textures.reshape(batch, 4, -1).index_select(2, texel_index)
        visible = (texels[:, 3:] > VISIBLE).to(textures.dtype)
        weighted = torch.cat([rgb_to_lab(texels[:, :3]) * visible, visible], dim=1)
        sums = textures.new_zeros(batch, _VALUES_PER_PART, parts).index_add_(2, texel_part, weighted)
        seen = sums[:, 3:]
        mean_lab = sums[:, :3] / seen.clamp(min=1)
        fraction = seen / self.part_texel_count.to(textures.device)
        return torch.cat([mean_lab, fraction], dim=1).transpose(1, 2).reshape(batch, -1)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """T×D distances in [0, 1) between embeddings a T×E and b D×E; NaN where no part is seen in both."""
        for name, embeddings in (("a", a), ("b", b)):
            if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
                shape = tuple(embeddings.shape)
                raise InputError(f"ColourDescriptor.distance `{name}` must be N×{self.embedding_size}, got {shape}.")
        parts_a = a.reshape(len(a), 1, -1, _VALUES_PER_PART)
        parts_b = b.reshape(1, len(b), -1, _VALUES_PER_PART)
        scale = torch.tensor([self.lightness_weight, 1.0, 1.0], dtype=a.dtype, device=a.device)
        delta_e = ((parts_a[..., :3] - parts_b[..., :3]) * scale).norm(dim=-1)  # T×D×P
        part_distance = 1 - torch.exp(-delta_e / self.colour_scale)
        shared = torch.minimum(parts_a[..., 3], parts_b[..., 3])
        weight = torch.where(shared >= self.min_visible_fraction, shared, torch.zeros_like(shared))
        total = weight.sum(dim=-1)
        mean = (weight * part_distance).sum(dim=-1) / total.clamp(min=torch.finfo(a.dtype).tiny)
        return torch.where(total > 0, mean, torch.full_like(mean, float("nan")))
