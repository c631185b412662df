"""Joints-only forward kinematics of a body model: the one implementation that the body model's `joints` and the
landmark fit both pose."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class Skeleton(torch.nn.Module):
    """Joints of a body model as a function of betas and joint rotations, without the mesh: joint regressor on the
    shaped template, then forward kinematics one tree level at a time (tiny broadcast products, no BLAS call)."""

    def __init__(
        self, joint_regressor: torch.Tensor, v_template: torch.Tensor, shapedirs: torch.Tensor, parents: Sequence[int]
    ) -> None:
        """`joint_regressor` J×V rows of the joints wanted, `v_template` V×3, `shapedirs` V×3×K, `parents` J (−1 for
        the root), each parent numbered before its children."""
        super().__init__()
        self.register_buffer("template", joint_regressor @ v_template)
        self.register_buffer("shape_dirs", torch.einsum("jv,vcb->jcb", joint_regressor, shapedirs))
        self.parents = tuple(parents)
        depth = [0] * len(self.parents)
        for joint, parent in enumerate(self.parents[1:], start=1):
            if parent >= joint:
                raise ValueError("Skeleton expects every joint's parent to come before it, as in SMPL.")
            depth[joint] = depth[parent] + 1
        # SMPL numbers its joints level by level, so each tree level is a contiguous run of joints.
        self.levels = [
            (depth.index(level), len(depth) - depth[::-1].index(level)) for level in range(1, max(depth) + 1)
        ]
        if any(depth[a:b] != [depth[a]] * (b - a) for a, b in self.levels):
            raise ValueError("Skeleton expects the joints numbered level by level, as in SMPL.")
        self.register_buffer("parent_index", torch.tensor([max(p, 0) for p in self.parents]))

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """B×J×3 joints of the shaped body in its rest pose."""
        return self.template + torch.einsum("jcb,nb->njc", self.shape_dirs, betas)

    def forward(self, rotations: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """B×J×3 posed joints for local rotations B×J×3×3 (root first), in the body model's frame."""
        rest = self.rest_joints(betas)
        bones = rest - rest[:, self.parent_index]
        frames = rotations[:, :1]
        positions = rest[:, :1]
        for first, last in self.levels:
            parents = self.parent_index[first:last]
            parent_frames = frames[:, parents]
            level_positions = positions[:, parents] + _apply(parent_frames, bones[:, first:last])
            frames = torch.cat([frames, _compose(parent_frames, rotations[:, first:last])], dim=1)
            positions = torch.cat([positions, level_positions], dim=1)
        return positions


def _compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for stacks of 3×3 matrices, as broadcast products (tiny matrices: no BLAS call per product)."""
    return (a[..., :, :, None] * b[..., None, :, :]).sum(-2)


def _apply(matrices: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """matrices …×3×3 applied to vectors …×3."""
    return (matrices * vectors[..., None, :]).sum(-1)
