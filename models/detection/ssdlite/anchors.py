"""SSD grid anchors and the Faster R-CNN box coder, as the TF graph computes them (normalised ymin, xmin, ymax,
xmax)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AnchorLayer:
    """Anchor shapes of one feature map: one (scale, aspect ratio) pair per anchor at every grid cell."""

    scales: tuple[float, ...]
    aspect_ratios: tuple[float, ...]


def grid_anchors(layers: list[AnchorLayer], feature_sizes: list[tuple[int, int]], image_size: tuple[int, int],
                 trained_size: tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """(A, 4) anchors for the network input `image_size` (H, W), ordered layer, row, column, anchor.

    Anchor sizes are `scale * min(trained_size)` pixels, square in pixels, as the TF generator makes them for
    the graph's own input size. Keeping them in pixels (rather than relative to the input) is what lets the
    network, trained at that size, run on a larger input: each layer's predictions stay relative to anchors of
    the pixel size it was trained with. At `image_size == trained_size` this is exactly the graph's generator.
    """
    height, width = image_size
    shorter = min(trained_size)
    base_h = torch.tensor(shorter / height, dtype=torch.float32)
    base_w = torch.tensor(shorter / width, dtype=torch.float32)
    out = []
    for layer, (grid_h, grid_w) in zip(layers, feature_sizes, strict=True):
        scales = torch.tensor(layer.scales, dtype=torch.float32)
        ratio_roots = torch.sqrt(torch.tensor(layer.aspect_ratios, dtype=torch.float32))
        heights = scales / ratio_roots * base_h
        widths = scales * ratio_roots * base_w
        stride_y = 1.0 / torch.tensor(float(grid_h))
        stride_x = 1.0 / torch.tensor(float(grid_w))
        y_centers = torch.arange(grid_h, dtype=torch.float32) * stride_y + 0.5 * stride_y
        x_centers = torch.arange(grid_w, dtype=torch.float32) * stride_x + 0.5 * stride_x
        cy = y_centers[:, None, None].expand(grid_h, grid_w, len(scales))
        cx = x_centers[None, :, None].expand(grid_h, grid_w, len(scales))
        h = heights.expand(grid_h, grid_w, len(scales))
        w = widths.expand(grid_h, grid_w, len(scales))
        out.append(torch.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], dim=-1).reshape(-1, 4))
    return torch.cat(out).to(device)


def decode_boxes(encodings: torch.Tensor, anchors: torch.Tensor, scale_factors: tuple[float, ...]) -> torch.Tensor:
    """Faster R-CNN box decoding: (…, A, 4) encodings (ty, tx, th, tw) + (A, 4) anchors -> (…, A, 4) boxes."""
    anchor_h = anchors[:, 2] - anchors[:, 0]
    anchor_w = anchors[:, 3] - anchors[:, 1]
    anchor_cy = anchors[:, 0] + anchor_h / 2
    anchor_cx = anchors[:, 1] + anchor_w / 2
    ty, tx, th, tw = (encodings[..., i] / scale_factors[i] for i in range(4))
    w = torch.exp(tw) * anchor_w
    h = torch.exp(th) * anchor_h
    cy = ty * anchor_h + anchor_cy
    cx = tx * anchor_w + anchor_cx
    return torch.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], dim=-1)
