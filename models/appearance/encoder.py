"""The interface of appearance descriptors computed from UV textures (weight-free or learned)."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class AppearanceEncoder(ABC):
    """Turns UV textures into embeddings and compares embeddings: the tracker sees only these two calls.
    `needs_textures` tells the appearance stage to sample each person's UV texture first."""

    needs_textures = True

    @abstractmethod
    def encode(self, textures: torch.Tensor) -> torch.Tensor:
        """Embeddings B×E of UV textures B×4×S×S (RGB in [0, 1], then visibility 0/1, as `TextureSampler` gives)."""

    @abstractmethod
    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances T×D in [0, 1] between every embedding of `a` (T×E, e.g. tracks) and of `b` (D×E, e.g.
        detections); NaN where the two share no evidence (nothing seen in both), so the caller can drop the cue."""
