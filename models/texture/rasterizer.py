"""The `Rasterizer` interface shared by every backend, its `Fragments` output and the pinhole projection.

Camera frame (input of `Rasterizer.rasterize`): x right, y down, z forward; a point is in front of the camera when
z > 0 (OpenCV convention, as `models.camera.project`). PyTorch3D uses x left, y up; its backend converts.
Pixel frame: u right, v down, in pixels; pixel (row i, column j) covers [j, j+1) × [i, i+1), so its centre is
(j + 0.5, i + 0.5) and a principal point of (W/2, H/2) is the image centre.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from models.camera import project_to_pixels
from models.structures import InputError


@dataclass
class Fragments:
    """Nearest face per pixel: face_index B×H×W int64 (-1 = background, else a row of `faces`), barycentrics
    B×H×W×3 of that face's vertices (0 on background) and depth B×H×W (+inf on background)."""

    face_index: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def covered(self) -> torch.Tensor:
        """B×H×W bool: pixels that some face covers."""
        return self.face_index >= 0

    @classmethod
    def background(
        cls, batch: int, image_size: tuple[int, int], device: torch.device, dtype: torch.dtype
    ) -> Fragments:
        """Fragments where no face covers any pixel."""
        height, width = image_size
        return cls(
            torch.full((batch, height, width), -1, dtype=torch.int64, device=device),
            torch.zeros((batch, height, width, 3), dtype=dtype, device=device),
            torch.full((batch, height, width), float("inf"), dtype=dtype, device=device),
        )


class Rasterizer(ABC):
    """Turns a batch of triangle meshes (one face list shared by the batch) into per-pixel `Fragments`."""

    def rasterize(
        self,
        vertices: torch.Tensor,
        faces: torch.Tensor,
        focal: float | torch.Tensor,
        principal_point: torch.Tensor,
        image_size: tuple[int, int],
    ) -> Fragments:
        """Rasterize camera-frame vertices (B×V×3, module docstring) seen by a pinhole camera with `focal` in pixels
        (a scalar, (fx, fy) for the whole batch, B or B×2) and `principal_point` in pixels ((2,) or B×2) into an
        image of (H, W) pixels. Barycentrics are perspective-correct; depth is the camera-frame z of the surface."""
        check_mesh(vertices, faces, "vertices")
        pixels = project_to_pixels(vertices, focal, principal_point)
        return self.rasterize_screen(pixels, faces, image_size, perspective_correct=True)

    @abstractmethod
    def rasterize_screen(
        self,
        points: torch.Tensor,
        faces: torch.Tensor,
        image_size: tuple[int, int],
        perspective_correct: bool = False,
    ) -> Fragments:
        """Rasterize vertices already in pixels (B×V×3: u, v, depth) into an image of (H, W) pixels; the nearest
        (smallest depth) face wins. With `perspective_correct` the depth is a camera z > 0 and barycentrics follow
        the 3D surface; without it everything is interpolated linearly in the image (orthographic, UV maps)."""


def check_mesh(points: torch.Tensor, faces: torch.Tensor, name: str) -> None:
    """Reject a vertex batch that is not B×V×3 floating point or faces that are not F×3 integer rows into it."""
    if points.ndim != 3 or points.shape[-1] != 3 or not points.is_floating_point():
        raise InputError(f"Rasterizer `{name}` must be a floating-point B×V×3 tensor, got {tuple(points.shape)}.")
    if faces.ndim != 2 or faces.shape[-1] != 3 or faces.is_floating_point():
        raise InputError(f"Rasterizer `faces` must be an integer F×3 tensor, got {tuple(faces.shape)}.")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= points.shape[1]):
        raise InputError(f"Rasterizer `faces` must index the {points.shape[1]} vertices of `{name}`.")


def check_image_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) as two positive ints, or an InputError."""
    if len(image_size) != 2 or min(int(image_size[0]), int(image_size[1])) <= 0:
        raise InputError(f"Rasterizer `image_size` must be two positive ints (H, W), got {image_size}.")
    return int(image_size[0]), int(image_size[1])
