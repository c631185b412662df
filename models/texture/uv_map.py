"""Per-texel face index and barycentrics of a body model's UV layout, for sampling a UV texture from an image.

Texel convention (as OBJ/SMPL UV images): a S×S texture's row 0 is v = 1 and column 0 is u = 0; texel (row i,
column j) is centred at u = (j + 0.5) / S, v = 1 - (i + 0.5) / S. The UV triangles are rasterized with the same
`rasterize_screen` as images, so a texel belongs to the UV triangle that contains its centre (where UV triangles
overlap, to the lowest face index).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from models.structures import InputError
from models.texture.torch_rasterizer import TorchRasterizer


@dataclass(frozen=True)
class UVTexelMap:
    """For each texel of a S×S UV image: the body face covering it (S×S int64, -1 if none) and the barycentrics
    (S×S×3 float32) of that face's UV corners at the texel centre, in the order of its `ft` row; since `ft` and the
    body's `f` list corners in the same order, they also place the texel on the 3D face."""

    face_index: torch.Tensor
    bary: torch.Tensor

    @property
    def covered(self) -> torch.Tensor:
        """S×S bool: texels that belong to some face."""
        return self.face_index >= 0


_TEXEL_MAPS: dict[tuple[str, int], UVTexelMap] = {}  # (layout digest, size) -> map; a few body models at most


def uv_texel_map(vt: np.ndarray | torch.Tensor, ft: np.ndarray | torch.Tensor, size: int = 256) -> UVTexelMap:
    """The texel map of the UV layout `vt` (T×2 in [0, 1]) and `ft` (F×3 rows of `vt`) at size×size texels, on
    the CPU. Computed once per layout and size, then shared from a cache: callers must not modify it in place."""
    vt_array = np.ascontiguousarray(torch.as_tensor(vt).detach().cpu().numpy(), dtype=np.float32)
    ft_array = np.ascontiguousarray(torch.as_tensor(ft).detach().cpu().numpy())
    _check_layout(vt_array, ft_array, size)
    ft_array = ft_array.astype(np.int64)
    digest = hashlib.sha1(str(vt_array.shape).encode() + vt_array.tobytes() + ft_array.tobytes()).hexdigest()
    key = (digest, int(size))
    if key not in _TEXEL_MAPS:
        _TEXEL_MAPS[key] = _rasterize_layout(torch.from_numpy(vt_array), torch.from_numpy(ft_array), int(size))
    return _TEXEL_MAPS[key]


def _rasterize_layout(vt: torch.Tensor, ft: torch.Tensor, size: int) -> UVTexelMap:
    """Rasterize the UV triangles as a flat mesh at unit depth, with texel rows running from v = 1 down."""
    texel_points = torch.stack([vt[:, 0] * size, (1.0 - vt[:, 1]) * size, torch.ones(len(vt))], dim=1)
    fragments = TorchRasterizer().rasterize_screen(texel_points[None], ft, (size, size), perspective_correct=False)
    return UVTexelMap(fragments.face_index[0], fragments.bary[0])


def _check_layout(vt: np.ndarray, ft: np.ndarray, size: int) -> None:
    """Reject a UV layout that is not T×2 in [0, 1] with F×3 integer rows into it, or a non-positive size."""
    in_unit_square = np.isfinite(vt).all() and vt.min(initial=0) >= -1e-6 and vt.max(initial=0) <= 1 + 1e-6
    if vt.ndim != 2 or vt.shape[1] != 2 or not in_unit_square:
        raise InputError(f"UV coordinates `vt` must be a T×2 array in [0, 1], got shape {vt.shape}.")
    if ft.ndim != 2 or ft.shape[1] != 3 or not np.issubdtype(ft.dtype, np.integer):
        raise InputError(f"UV faces `ft` must be an F×3 integer array, got shape {ft.shape} of {ft.dtype}.")
    if ft.size and (ft.min() < 0 or ft.max() >= len(vt)):
        raise InputError(f"UV faces `ft` must index the {len(vt)} rows of `vt`.")
    if int(size) <= 0:
        raise InputError(f"UV map size must be a positive number of texels, got {size}.")
