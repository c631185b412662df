"""Per-track texture memory: a running UV texture that new observations refine where they see the body."""
from __future__ import annotations

import torch

from models.structures import InputError

VISIBLE = 0.5  # a texel whose visibility channel exceeds this counts as seen


def blend_textures(memory: torch.Tensor, new: torch.Tensor, rate: float) -> torch.Tensor:
    """Updated memories B×4×S×S (PHALP's rule): texels visible in both become (1 − rate)·memory + rate·new,
    texels visible only in `new` are copied from it, all others keep `memory`. Both are B×4×S×S (RGB, visibility)."""
    if memory.shape != new.shape or memory.ndim != 4 or memory.shape[1] != 4:
        shapes = f"{tuple(memory.shape)} and {tuple(new.shape)}"
        raise InputError(f"blend_textures needs two B×4×S×S textures of one shape, got {shapes}.")
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"Texture memory blend rate must lie in [0, 1], got {rate}.")
    seen_before = memory[:, 3:] > VISIBLE
    seen_now = new[:, 3:] > VISIBLE
    updated = torch.where(seen_before, torch.lerp(memory, new, rate), new)
    return torch.where(seen_now, updated, memory)
