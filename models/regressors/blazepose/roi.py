"""BlazePose's input: a square region of interest around each person, resampled to 256×256 RGB in [0, 1].

The region is centred on the box with side `scale` × the box's longer side, upright (no rotation: boxes carry
no body alignment). Pixels outside the frame repeat the nearest edge pixel, as MediaPipe's BORDER_REPLICATE does;
black padding measurably hurts the landmarks. Coordinates are continuous pixels (pixel k spans [k, k + 1)), so a
point at u ∈ [0, 256] across the crop lies at center + (u / 256 - 0.5) · side in the frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models.structures import InputError


def square_rois(boxes: torch.Tensor, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre B×2 and side B (frame pixels) of each xyxy box's square region: `scale` × its longer side."""
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0).max(dim=1).values * scale
    return center, side


def crop_rois(
    frames: Sequence[np.ndarray] | torch.Tensor,
    frame_ids: torch.Tensor,
    center: torch.Tensor,
    side: torch.Tensor,
    size: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """B×3×size×size float32 RGB crops in [0, 1] of the regions (center, side) of frames[frame_ids], edge-padded.

    frames: H×W×3 uint8 RGB arrays (or an F×H×W×3 uint8 tensor); one bilinear grid_sample per frame with people."""
    device = torch.device(device)
    crops = torch.empty((len(frame_ids), 3, size, size), dtype=torch.float32, device=device)
    steps = (torch.arange(size, dtype=torch.float32, device=device) + 0.5) / size - 0.5
    for frame_id in torch.unique(frame_ids).tolist():
        image = frames[frame_id]
        image = torch.as_tensor(image if isinstance(image, torch.Tensor) else np.ascontiguousarray(image))
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != torch.uint8:
            raise InputError(
                f"BlazePose crops expected H×W×3 uint8 RGB frames, got {tuple(image.shape)} {image.dtype}."
            )
        height, width = image.shape[:2]
        people = torch.nonzero(frame_ids == frame_id).flatten()
        offsets = side[people, None].to(device) * steps[None, :]
        xs = (center[people, 0:1].to(device) + offsets) * (2.0 / width) - 1.0
        ys = (center[people, 1:2].to(device) + offsets) * (2.0 / height) - 1.0
        grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)  # P×S×S×2
        grid = grid.reshape(1, len(people) * size, size, 2)
        source = image.to(device).permute(2, 0, 1)[None].float() / 255.0
        sampled = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
        crops[people.to(device)] = sampled.reshape(3, len(people), size, size).transpose(0, 1)
    return crops


def crop_to_frame(points: torch.Tensor, center: torch.Tensor, side: torch.Tensor, size: int) -> torch.Tensor:
    """Frame pixels B×N×2 of points B×N×2 given in crop pixels (0..size) of the regions (center B×2, side B)."""
    return center[:, None, :] + (points / size - 0.5) * side[:, None, None]
