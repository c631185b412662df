"""Crop camera → full-frame camera (as 4D-Humans' `cam_crop_to_full`) and pinhole projection to frame pixels."""

from __future__ import annotations

import torch

EPS = 1e-9


def full_frame_focal_length(image_size: torch.Tensor, crop_focal_length: float, crop_size: int) -> torch.Tensor:
    """Focal length (pixels) of the frame camera: HMR2.0's crop focal length scaled from the crop to the longer side.

    image_size: B×2 (width, height). 4D-Humans' demo uses 5000 / 256 · max(width, height).
    """
    return crop_focal_length / crop_size * image_size.max(dim=-1).values


def cam_crop_to_full(
    pred_cam: torch.Tensor,
    box_center: torch.Tensor,
    box_size: torch.Tensor,
    image_size: torch.Tensor,
    focal_length: torch.Tensor | float,
) -> torch.Tensor:
    """Full-frame camera translation B×3 from the weak-perspective crop camera B×3 (s, tx, ty).

    box_center B×2 and box_size B (side of the square crop region) in frame pixels, image_size B×2 (width, height),
    focal_length B or scalar in pixels; the principal point is the image centre.
    """
    scale, tx, ty = pred_cam.unbind(-1)
    half_w, half_h = image_size[:, 0] / 2, image_size[:, 1] / 2
    scaled_size = box_size * scale + EPS
    tz = 2 * focal_length / scaled_size
    tx_full = 2 * (box_center[:, 0] - half_w) / scaled_size + tx
    ty_full = 2 * (box_center[:, 1] - half_h) / scaled_size + ty
    return torch.stack([tx_full, ty_full, tz], dim=-1)


def project(
    points: torch.Tensor, cam_t: torch.Tensor, focal_length: torch.Tensor | float, image_size: torch.Tensor
) -> torch.Tensor:
    """Pixels B×N×2 of body points B×N×3 moved by cam_t B×3; pinhole camera centred on the image B×2 (w, h)."""
    focal = torch.as_tensor(focal_length, dtype=points.dtype, device=points.device).reshape(-1, 1, 1)
    in_camera = points + cam_t[:, None, :]
    depth = in_camera[..., 2:].clamp(min=EPS)
    return focal * in_camera[..., :2] / depth + image_size[:, None, :].to(points.dtype) / 2
