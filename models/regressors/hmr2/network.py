"""HMR2.0 as a plain module: ViT backbone + SMPL head, named `backbone` and `smpl_head` as in the checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.regressors.hmr2.head import NUM_JOINTS, HeadArchitecture, SMPLHead, rot6d_to_rotmat
from models.regressors.hmr2.vit import ViT, ViTArchitecture
from models.structures import InputError

# Columns kept from the 256×256 crop: HMR2.0's ViT sees x[:, :, :, 32:-32], a 256×192 (h×w) centre strip.
CROP_COLUMN_MARGIN = 32


@dataclass(frozen=True)
class HMR2Architecture:
    """Sizes of both parts; `vit_h` is the released checkpoint's layout, `small` a CPU/test configuration."""

    backbone: ViTArchitecture
    head: HeadArchitecture


PRESETS: dict[str, HMR2Architecture] = {
    "vit_h": HMR2Architecture(
        ViTArchitecture(embed_dim=1280, depth=32, num_heads=16),
        HeadArchitecture(dim=1024, depth=6, heads=8, dim_head=64, mlp_dim=1024, context_dim=1280),
    ),
    "small": HMR2Architecture(
        ViTArchitecture(embed_dim=192, depth=4, num_heads=3),
        HeadArchitecture(dim=256, depth=2, heads=4, dim_head=32, mlp_dim=256, context_dim=192),
    ),
}


def architecture(preset: str) -> HMR2Architecture:
    """The named preset, or InputError listing the known names."""
    if preset not in PRESETS:
        raise InputError(f"regressor.preset must be one of {sorted(PRESETS)}, got {preset!r}.")
    return PRESETS[preset]


class HMR2Network(nn.Module):
    """Normalised crops B×3×256×256 → raw head outputs (pose 6D B×144, betas B×10, crop camera B×3)."""

    def __init__(self, arch: HMR2Architecture) -> None:
        super().__init__()
        self.backbone = ViT(arch.backbone)
        self.smpl_head = SMPLHead(arch.head)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        strip = crops[:, :3, :, CROP_COLUMN_MARGIN:-CROP_COLUMN_MARGIN]
        return self.smpl_head(self.backbone(strip))


def pose_to_rotmats(pose_6d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Head pose B×144 → (global_orient B×1×3×3, body_pose B×23×3×3)."""
    rotmats = rot6d_to_rotmat(pose_6d.reshape(-1, NUM_JOINTS, 6))
    return rotmats[:, :1], rotmats[:, 1:]
