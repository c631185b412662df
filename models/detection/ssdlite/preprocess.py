"""Image preprocessing of the TF graph: legacy bilinear resize (no half-pixel centres) and scaling to [-1, 1]."""
from __future__ import annotations

import torch


def _source_positions(out_size: int, in_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    position = torch.arange(out_size, dtype=torch.float32) * scale
    low = position.floor().long().clamp(max=in_size - 1)
    high = (low + 1).clamp(max=in_size - 1)
    return low.to(device), high.to(device), (position - low.float()).to(device)


def resize_bilinear_legacy(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, C) image of any dtype -> (h, w, C) float32, sampling source pixel out*in/out like TF1's
    ResizeBilinear with align_corners=False and half_pixel_centers=False (what the frozen graph does).

    Rows are picked before the conversion to float, so a 4K uint8 frame never becomes a full-size float tensor;
    the interpolation runs in place (fresh large tensors cost page faults that took longer than the arithmetic).
    """
    top, bottom, y_weight = _source_positions(size[0], image.shape[0], image.device)
    left, right, x_weight = _source_positions(size[1], image.shape[1], image.device)
    rows = image.index_select(0, top).float()
    rows.lerp_(image.index_select(0, bottom).float(), y_weight[:, None, None])
    columns = rows.index_select(1, left)
    return columns.lerp_(rows.index_select(1, right), x_weight[:, None])


def to_network_input(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) pixel values 0..255 -> (B, 3, H, W) in [-1, 1] (the graph's `x * 2/255 - 1`), stored
    channels-last, the fastest layout for the depthwise convolutions."""
    return (images * (2.0 / 255.0) - 1.0).permute(0, 3, 1, 2)
