"""Per-track appearance memories for the association cost: what each track looked like, compared with detections.

Two kinds, one interface (`observe`, `distance`, `keep`): `TextureMemory` keeps PHALP's running UV texture per
track and re-encodes it (texture descriptors such as the colour one); `EmbeddingMemory` keeps a running average of
each track's unit embeddings (crop embeddings such as MobileNetV2's). Distances are divided by the appearance
model's `distance_scale` (calibrated in its config: distance 1 is where 99.5% of same-person distances fall
below), so that the tracker's gates mean the same for every model.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from models.appearance import AppearanceEncoder, blend_textures
from models.structures import InputError


class AppearanceMemory(Protocol):
    """What the tracker needs of a per-track appearance memory."""

    def observe(self, track_ids: list[int], embeddings: torch.Tensor, textures: torch.Tensor | None) -> None:
        """Folds one new observation per track (rows aligned with `track_ids`) into the memories."""

    def distance(self, track_ids: list[int], embeddings: torch.Tensor) -> np.ndarray:
        """T×D distances of the tracks' memories to detection embeddings; NaN where a track has no memory or the
        two share no evidence."""

    def keep(self, track_ids: list[int]) -> None:
        """Forgets every track not in `track_ids` (deleted tracks)."""

    def state_dict(self) -> dict:
        """The memories as plain values and numpy arrays (for a checkpoint)."""

    def load_state_dict(self, state: dict, device: str | torch.device = "cpu") -> None:
        """Restores what `state_dict` returned."""


class TextureMemory:
    """Texture memories of live tracks (PHALP's blending), re-encoded whenever they change."""

    def __init__(self, encoder: AppearanceEncoder, blend_rate: float, distance_scale: float = 1.0) -> None:
        if not 0.0 <= blend_rate <= 1.0 or not distance_scale > 0:
            raise InputError(
                f"appearance needs a blend rate in [0, 1] and a positive distance scale, got {blend_rate} and "
                f"{distance_scale}."
            )
        self.encoder = encoder
        self.blend_rate = blend_rate
        self.distance_scale = distance_scale
        self._textures: dict[int, torch.Tensor] = {}
        self._embeddings: dict[int, torch.Tensor] = {}

    def observe(self, track_ids: list[int], embeddings: torch.Tensor, textures: torch.Tensor | None) -> None:
        if not track_ids:
            return
        if textures is None:
            raise ValueError("TextureMemory needs the detections' UV textures.")
        known = [i for i, t in enumerate(track_ids) if t in self._textures]
        merged = textures.clone()
        if known:
            memory = torch.stack([self._textures[track_ids[i]] for i in known])
            merged[known] = blend_textures(memory, textures[known], self.blend_rate)
        encoded = self.encoder.encode(merged)
        for row, track_id in enumerate(track_ids):
            self._textures[track_id] = merged[row]
            self._embeddings[track_id] = encoded[row]

    def distance(self, track_ids: list[int], embeddings: torch.Tensor) -> np.ndarray:
        return _distances(self._embeddings, self.encoder.distance, track_ids, embeddings) / self.distance_scale

    def keep(self, track_ids: list[int]) -> None:
        alive = set(track_ids)
        for track_id in [t for t in self._textures if t not in alive]:
            del self._textures[track_id]
            del self._embeddings[track_id]

    def state_dict(self) -> dict:
        """The live tracks' textures and their encodings, as arrays (for a checkpoint)."""
        return {**_tensors_state(self._textures, "textures"), "embeddings": _tensors_state(self._embeddings)["values"]}

    def load_state_dict(self, state: dict, device: str | torch.device = "cpu") -> None:
        """Restores what `state_dict` returned, the tensors on `device`."""
        self._textures = _tensors_from_state(state["ids"], state["textures"], device)
        self._embeddings = _tensors_from_state(state["ids"], state["embeddings"], device)


class EmbeddingMemory:
    """Each live track's running average of its unit embeddings (new = (1 − rate)·old + rate·observed, then
    renormalised); compared by cosine distance."""

    def __init__(self, rate: float, distance_scale: float = 1.0) -> None:
        if not 0.0 < rate <= 1.0 or not distance_scale > 0:
            raise InputError(
                f"appearance needs a memory rate in (0, 1] and a positive distance scale, got {rate} and "
                f"{distance_scale}."
            )
        self.rate = rate
        self.distance_scale = distance_scale
        self._embeddings: dict[int, torch.Tensor] = {}

    def observe(self, track_ids: list[int], embeddings: torch.Tensor, textures: torch.Tensor | None) -> None:
        for track_id, embedding in zip(track_ids, embeddings):
            previous = self._embeddings.get(track_id)
            mixed = embedding if previous is None else torch.lerp(previous, embedding, self.rate)
            self._embeddings[track_id] = mixed / mixed.norm().clamp(min=1e-8)

    def distance(self, track_ids: list[int], embeddings: torch.Tensor) -> np.ndarray:
        return _distances(self._embeddings, _cosine, track_ids, embeddings) / self.distance_scale

    def keep(self, track_ids: list[int]) -> None:
        alive = set(track_ids)
        for track_id in [t for t in self._embeddings if t not in alive]:
            del self._embeddings[track_id]

    def state_dict(self) -> dict:
        """The live tracks' running embeddings, as one array (for a checkpoint)."""
        return _tensors_state(self._embeddings)

    def load_state_dict(self, state: dict, device: str | torch.device = "cpu") -> None:
        """Restores what `state_dict` returned, the tensors on `device`."""
        self._embeddings = _tensors_from_state(state["ids"], state["values"], device)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1.0 - a @ b.T


def _distances(
    memory: dict[int, torch.Tensor],
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    track_ids: list[int],
    embeddings: torch.Tensor,
) -> np.ndarray:
    """T×D distances of the remembered tracks to `embeddings`, NaN rows for tracks without a memory."""
    out = np.full((len(track_ids), len(embeddings)), np.nan)
    rows = [i for i, t in enumerate(track_ids) if t in memory]
    if rows and len(embeddings):
        remembered = torch.stack([memory[track_ids[i]] for i in rows])
        out[rows] = distance(remembered, embeddings).float().cpu().numpy()
    return out


def _tensors_state(memory: dict[int, torch.Tensor], name: str = "values") -> dict:
    """A track-id → tensor memory as its ids (in order) and the stacked tensors as one numpy array."""
    ids = list(memory)
    values = torch.stack([memory[t] for t in ids]).cpu().numpy() if ids else np.zeros((0,), np.float32)
    return {"ids": ids, name: values}


def _tensors_from_state(ids: list[int], values: np.ndarray, device: str | torch.device) -> dict[int, torch.Tensor]:
    """Inverse of `_tensors_state`."""
    return {int(t): torch.from_numpy(np.array(values[i])).to(device) for i, t in enumerate(ids)}
