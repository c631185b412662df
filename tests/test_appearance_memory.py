"""Per-track appearance memories: PHALP's texture blending per track, running embedding averages, distances in
calibrated units, deleted tracks forgotten."""
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from models.appearance import AppearanceEncoder
from models.structures import InputError
from tracker.appearance import EmbeddingMemory, TextureMemory
from tracker.pipeline import build_memory


class MeanColour(AppearanceEncoder):
    """Mean RGB of visible texels: enough to see what the memory holds."""

    def encode(self, textures: torch.Tensor) -> torch.Tensor:
        visible = textures[:, 3:]
        return (textures[:, :3] * visible).sum(dim=(2, 3)) / visible.sum(dim=(2, 3)).clamp(min=1)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cdist(a, b)


def texture(rgb: tuple[float, float, float], visible: bool = True) -> torch.Tensor:
    out = torch.zeros(4, 4, 4)
    out[:3] = torch.tensor(rgb)[:, None, None]
    out[3] = float(visible)
    return out


def test_blends_known_tracks_and_copies_new_ones():
    memory = TextureMemory(MeanColour(), blend_rate=0.25)
    memory.observe([1, 2], None, torch.stack([texture((1, 0, 0)), texture((0, 1, 0))]))
    memory.observe([1], None, texture((0, 0, 1))[None])
    distances = memory.distance([1, 2, 3], torch.tensor([[0.75, 0.0, 0.25], [0.0, 1.0, 0.0]]))
    assert distances[0, 0] < 1e-6 and distances[1, 1] < 1e-6
    assert np.isnan(distances[2]).all()


def test_invisible_new_texture_leaves_memory_unchanged():
    memory = TextureMemory(MeanColour(), blend_rate=0.5)
    memory.observe([4], None, texture((1, 1, 1))[None])
    memory.observe([4], None, texture((0, 0, 0), visible=False)[None])
    assert memory.distance([4], torch.tensor([[1.0, 1.0, 1.0]]))[0, 0] < 1e-6


def test_keep_forgets_deleted_tracks():
    memory = TextureMemory(MeanColour(), blend_rate=0.5)
    memory.observe([1, 2], None, torch.stack([texture((1, 0, 0)), texture((0, 1, 0))]))
    memory.keep([2])
    distances = memory.distance([1, 2], torch.tensor([[0.0, 1.0, 0.0]]))
    assert np.isnan(distances[0, 0]) and distances[1, 0] < 1e-6


def test_embedding_memory_averages_renormalises_and_scales_distances():
    memory = EmbeddingMemory(rate=0.5, distance_scale=0.5)
    memory.observe([7], torch.tensor([[1.0, 0.0]]), None)
    memory.observe([7], torch.tensor([[0.0, 1.0]]), None)
    diagonal = torch.tensor([[2**-0.5, 2**-0.5]])
    assert memory.distance([7], diagonal)[0, 0] < 1e-6  # the average of two directions, back on the unit circle
    # cos 45° to the x axis: cosine distance 1 - 0.7071, divided by the calibrated scale 0.5
    assert abs(memory.distance([7], torch.tensor([[1.0, 0.0]]))[0, 0] - (1 - 2**-0.5) / 0.5) < 1e-6
    memory.keep([])
    assert np.isnan(memory.distance([7], diagonal)).all()


def test_build_memory_follows_the_configured_kind():
    embedding = build_memory(OmegaConf.create({"memory": "embedding", "memory_rate": 0.3, "distance_scale": 0.2}))
    assert isinstance(embedding, EmbeddingMemory) and embedding.distance_scale == 0.2
    settings = OmegaConf.create({"memory": "texture", "memory_rate": 0.2, "distance_scale": 0.5})
    assert isinstance(build_memory(settings, MeanColour()), TextureMemory)
    with pytest.raises(InputError, match="texture or embedding"):
        build_memory(OmegaConf.create({"memory": "pixels", "memory_rate": 0.2, "distance_scale": 0.5}))
