"""Cameras: crop camera → full-frame camera (as 4D-Humans' `cam_crop_to_full`), and the one pinhole projection."""

from __future__ import annotations

import torch

from models.structures import InputError

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


def camera_pair(value: float | torch.Tensor, batch: int, like: torch.Tensor, name: str) -> torch.Tensor:
    """A scalar, (2,), (B,), (B, 1) or (B, 2) camera parameter (`name`: focal length or principal point, pixels)
    as B×2 on `like`'s device and dtype."""
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if tensor.ndim == 0 or tensor.shape == (2,):
        return tensor.expand(batch, 2)
    if tensor.shape in ((batch,), (batch, 1)):
        return tensor.reshape(batch, 1).expand(batch, 2)
    if tensor.shape == (batch, 2):
        return tensor
    raise InputError(
        f"Camera `{name}` must be a scalar, (2,), (B,) or (B, 2) for B={batch}, got {tuple(tensor.shape)}."
    )


def project_to_pixels(
    points: torch.Tensor, focal: float | torch.Tensor, principal_point: float | torch.Tensor
) -> torch.Tensor:
    """Pinhole projection of camera-frame points B×N×3 (x right, y down, z forward) to B×N×3: u, v in pixels and
    z kept as depth. `focal` and `principal_point` are pixels, in any form `camera_pair` takes. Points at z ≤ 0
    are divided by 1 instead (callers test the depth)."""
    batch = points.shape[0]
    focal_xy = camera_pair(focal, batch, points, "focal")
    centre_xy = camera_pair(principal_point, batch, points, "principal_point")
    depth = points[..., 2:3]
    safe_depth = torch.where(depth > 0, depth, torch.ones_like(depth))
    uv = points[..., :2] / safe_depth * focal_xy[:, None, :] + centre_xy[:, None, :]
    return torch.cat([uv, depth], dim=-1)


def project(
    points: torch.Tensor, cam_t: torch.Tensor, focal_length: torch.Tensor | float, image_size: torch.Tensor
) -> torch.Tensor:
    """Pixels B×N×2 of body points B×N×3 moved by cam_t B×3, in the full-frame camera (principal point at the
    centre of image_size B×2, width and height)."""
    centre = image_size.to(points.dtype) / 2
    return project_to_pixels(points + cam_t[:, None, :], focal_length, centre)[..., :2]
