"""The ViTPose-style ViT backbone of HMR2.0; module and parameter names match the released checkpoint's `backbone.*`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ViTArchitecture:
    """Backbone size. The released HMR2.0 uses ViT-H/16: 1280 wide, 32 blocks, 16 heads, input 256×192."""

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    patch_size: int = 16
    image_hw: tuple[int, int] = (256, 192)
    patch_padding: int = 2

    @property
    def grid_hw(self) -> tuple[int, int]:
        """Token grid (rows, columns) the padded patch convolution produces."""
        return tuple((n + 2 * self.patch_padding - self.patch_size) // self.patch_size + 1 for n in self.image_hw)


class PatchEmbed(nn.Module):
    """Non-overlapping 16×16 patches as one strided convolution (padding 2, as ViTPose with ratio 1)."""

    def __init__(self, arch: ViTArchitecture) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, arch.embed_dim, arch.patch_size, stride=arch.patch_size, padding=arch.patch_padding)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """Two-layer GELU feed-forward."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-6)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Image B×3×256×192 → tokens B×(16·12)×C in row-major patch order (HMR2 head's context)."""

    def __init__(self, arch: ViTArchitecture) -> None:
        super().__init__()
        rows, cols = arch.grid_hw
        self.patch_embed = PatchEmbed(arch)
        # One extra position: the pretrained class-token slot, added to every patch as ViTPose does.
        self.pos_embed = nn.Parameter(torch.zeros(1, rows * cols + 1, arch.embed_dim))
        self.blocks = nn.ModuleList(Block(arch.embed_dim, arch.num_heads, arch.mlp_ratio) for _ in range(arch.depth))
        self.last_norm = nn.LayerNorm(arch.embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = x + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        for block in self.blocks:
            x = block(x)
        return self.last_norm(x)
