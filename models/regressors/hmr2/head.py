"""HMR2.0's SMPL head: one query token cross-attends to the ViT tokens, then linear read-outs add to mean parameters.

Module and buffer names match the released checkpoint's `smpl_head.*` keys.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NUM_JOINTS = 24
POSE_6D_DIM = 6 * NUM_JOINTS
NUM_BETAS = 10
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
# HMR's mean weak-perspective camera (scale 0.9, centred); the real mean parameters come with the checkpoint.
MEAN_CAM = (0.9, 0.0, 0.0)


@dataclass(frozen=True)
class HeadArchitecture:
    """Head size. The released HMR2.0: width 1024, 6 layers, 8 heads of 64, MLP 1024, context 1280 (ViT-H)."""

    dim: int
    depth: int
    heads: int
    dim_head: int
    mlp_dim: int
    context_dim: int


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """6D rotations (…×6: the matrix's first, then second column, as HMR2 stores them) → rotations …×3×3."""
    pairs = x.reshape(*x.shape[:-1], 2, 3)
    b1 = F.normalize(pairs[..., 0, :], dim=-1)
    a2 = pairs[..., 1, :]
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


class PreNorm(nn.Module):
    """LayerNorm, then the wrapped layer."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


class SelfAttention(nn.Module):
    """Multi-head self-attention, bias-free qkv."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))
        return self.to_out(merge_heads(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    """Multi-head attention from the query tokens to the image tokens (the context)."""

    def __init__(self, dim: int, context_dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_kv = nn.Linear(context_dim, heads * dim_head * 2, bias=False)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        k, v = (split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        q = split_heads(self.to_q(x), self.heads)
        return self.to_out(merge_heads(F.scaled_dot_product_attention(q, k, v)))


class FeedForward(nn.Module):
    """GELU MLP; its linear layers keep the checkpoint's Sequential indices 0 and 3 (1-2 were GELU and dropout)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            OrderedDict([("0", nn.Linear(dim, hidden)), ("1", nn.GELU()), ("3", nn.Linear(hidden, dim))])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    batch, tokens, width = t.shape
    return t.reshape(batch, tokens, heads, width // heads).transpose(1, 2)


def merge_heads(t: torch.Tensor) -> torch.Tensor:
    batch, heads, tokens, dim_head = t.shape
    return t.transpose(1, 2).reshape(batch, tokens, heads * dim_head)


class CrossAttentionStack(nn.Module):
    """`depth` layers of [self-attention, cross-attention, feed-forward], each pre-norm with a residual."""

    def __init__(self, arch: HeadArchitecture) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(arch.dim, SelfAttention(arch.dim, arch.heads, arch.dim_head)),
                    PreNorm(arch.dim, CrossAttention(arch.dim, arch.context_dim, arch.heads, arch.dim_head)),
                    PreNorm(arch.dim, FeedForward(arch.dim, arch.mlp_dim)),
                ]
            )
            for _ in range(arch.depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for self_attn, cross_attn, feed_forward in self.layers:
            x = self_attn(x) + x
            x = cross_attn(x, context=context) + x
            x = feed_forward(x) + x
        return x


class TokenDecoder(nn.Module):
    """Embeds the (zero) input token, adds its learned position, runs the cross-attention stack."""

    def __init__(self, arch: HeadArchitecture, token_dim: int = 1) -> None:
        super().__init__()
        self.to_token_embedding = nn.Linear(token_dim, arch.dim)
        self.pos_embedding = nn.Parameter(torch.randn(1, 1, arch.dim))
        self.transformer = CrossAttentionStack(arch)

    def forward(self, token: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.to_token_embedding(token) + self.pos_embedding
        return self.transformer(x, context=context)


class SMPLHead(nn.Module):
    """Image tokens B×N×C → (pose B×144 in 6D, betas B×10, crop camera B×3), each a residual on the mean."""

    def __init__(self, arch: HeadArchitecture) -> None:
        super().__init__()
        self.register_buffer("init_body_pose", torch.tensor(IDENTITY_6D).repeat(NUM_JOINTS)[None])
        self.register_buffer("init_betas", torch.zeros(1, NUM_BETAS))
        self.register_buffer("init_cam", torch.tensor(MEAN_CAM)[None])
        self.transformer = TokenDecoder(arch)
        self.decpose = nn.Linear(arch.dim, POSE_6D_DIM)
        self.decshape = nn.Linear(arch.dim, NUM_BETAS)
        self.deccam = nn.Linear(arch.dim, 3)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        query = tokens.new_zeros(tokens.shape[0], 1, 1)
        out = self.transformer(query, context=tokens)[:, 0]
        pose_6d = self.decpose(out) + self.init_body_pose
        betas = self.decshape(out) + self.init_betas
        cam = self.deccam(out) + self.init_cam
        return pose_6d, betas, cam
