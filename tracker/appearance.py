"""Per-track appearance: a UV texture memory per track (PHALP's blending) and its embedding, for the cost."""
from __future__ import annotations

import numpy as np
import torch

from models.appearance import AppearanceEncoder, blend_textures


class AppearanceMemory:
    """Texture memories of live tracks, re-encoded whenever they change; distances to detections in one call."""

    def __init__(self, encoder: AppearanceEncoder, blend_rate: float) -> None:
        self.encoder = encoder
        self.blend_rate = blend_rate
        self._textures: dict[int, torch.Tensor] = {}
        self._embeddings: dict[int, torch.Tensor] = {}

    def observe(self, track_ids: list[int], textures: torch.Tensor) -> None:
        """Folds one new texture per track (B×4×S×S, rows aligned with `track_ids`) into the memories."""
        if not track_ids:
            return
        known = [i for i, t in enumerate(track_ids) if t in self._textures]
        merged = textures.clone()
        if known:
            memory = torch.stack([self._textures[track_ids[i]] for i in known])
            merged[known] = blend_textures(memory, textures[known], self.blend_rate)
        embeddings = self.encoder.encode(merged)
        for row, track_id in enumerate(track_ids):
            self._textures[track_id] = merged[row]
            self._embeddings[track_id] = embeddings[row]

    def distance(self, track_ids: list[int], detection_embeddings: torch.Tensor) -> np.ndarray:
        """T×D appearance distances; NaN for tracks without a memory or pairs that share no visible part."""
        out = np.full((len(track_ids), len(detection_embeddings)), np.nan)
        rows = [i for i, t in enumerate(track_ids) if t in self._embeddings]
        if rows and len(detection_embeddings):
            memory = torch.stack([self._embeddings[track_ids[i]] for i in rows])
            out[rows] = self.encoder.distance(memory, detection_embeddings).cpu().numpy()
        return out

    def keep(self, track_ids: list[int]) -> None:
        """Forgets every track not in `track_ids` (deleted tracks)."""
        alive = set(track_ids)
        for track_id in [t for t in self._textures if t not in alive]:
            del self._textures[track_id]
            del self._embeddings[track_id]
