"""PyTorch3D backend of the `Rasterizer` interface: the reference design's `MeshRasterizer`, for CUDA machines.

PyTorch3D ships as the `easypytorch3d` wheel (CUDA build); it is imported when this backend is built, never at
module import, so that machines without it can use the built-in torch rasterizer. Its camera frame is x left,
y up, z forward and its screen space is NDC; this module converts both so that the output pixel grid, face
indices, barycentrics and depth match `TorchRasterizer` (see models/texture/rasterizer.py for the conventions).
"""
from __future__ import annotations

import importlib

import torch

from models.camera import camera_pair
from models.structures import InputError
from models.texture.rasterizer import Fragments, Rasterizer, check_image_size, check_mesh

# Camera frame (x right, y down) -> PyTorch3D view frame (x left, y up): a half turn about z, depth unchanged.
_TO_PYTORCH3D_VIEW = (-1.0, -1.0, 1.0)


class PyTorch3DRasterizer(Rasterizer):
    """Rasterizes with `pytorch3d.renderer.MeshRasterizer` (one face per pixel, no blur)."""

    def __init__(
        self, cull_backfaces: bool = False, bin_size: int | None = None, max_faces_per_bin: int | None = None
    ) -> None:
        """`cull_backfaces` as in `TorchRasterizer`; `bin_size` and `max_faces_per_bin` are PyTorch3D's
        coarse-to-fine settings (None: its own heuristics, 0: naive rasterization)."""
        self.renderer = _import_pytorch3d_renderer()
        self.structures = importlib.import_module("pytorch3d.structures")
        self.cull_backfaces = cull_backfaces
        self.bin_size = bin_size
        self.max_faces_per_bin = max_faces_per_bin

    def rasterize(
        self,
        vertices: torch.Tensor,
        faces: torch.Tensor,
        focal: float | torch.Tensor,
        principal_point: torch.Tensor,
        image_size: tuple[int, int],
    ) -> Fragments:
        check_mesh(vertices, faces, "vertices")
        height, width = check_image_size(image_size)
        batch = vertices.shape[0]
        if batch == 0 or faces.shape[0] == 0:
            return Fragments.background(batch, (height, width), vertices.device, vertices.dtype)
        single = vertices.float()
        cameras = self.renderer.PerspectiveCameras(
            focal_length=camera_pair(focal, batch, single, "focal"),
            principal_point=camera_pair(principal_point, batch, single, "principal_point"),
            in_ndc=False,
            image_size=torch.tensor([[height, width]] * batch, device=vertices.device),
            device=vertices.device,
        )
        rasterizer = self.renderer.MeshRasterizer(cameras=cameras, raster_settings=self._settings(height, width, True))
        view = single * torch.tensor(_TO_PYTORCH3D_VIEW, device=vertices.device)
        raw = rasterizer(self._meshes(view, faces))
        return _fragments(raw.pix_to_face, raw.zbuf, raw.bary_coords, faces.shape[0], vertices.dtype)

    def rasterize_screen(
        self,
        points: torch.Tensor,
        faces: torch.Tensor,
        image_size: tuple[int, int],
        perspective_correct: bool = False,
    ) -> Fragments:
        """As `Rasterizer.rasterize_screen`, except that PyTorch3D skips every face with a depth below 1e-8."""
        check_mesh(points, faces, "points")
        height, width = check_image_size(image_size)
        batch = points.shape[0]
        if batch == 0 or faces.shape[0] == 0:
            return Fragments.background(batch, (height, width), points.device, points.dtype)
        # PyTorch3D NDC: +x left, +y up, the shorter image side spans [-1, 1]; pixel centres land on u = j + 0.5.
        half_short_side = min(height, width) / 2.0
        ndc = torch.stack(
            [
                (width / 2.0 - points[..., 0]) / half_short_side,
                (height / 2.0 - points[..., 1]) / half_short_side,
                points[..., 2],
            ],
            dim=-1,
        )
        settings = self._settings(height, width, perspective_correct)
        pix_to_face, zbuf, bary, _ = self.renderer.rasterize_meshes(
            self._meshes(ndc, faces),
            image_size=settings.image_size,
            blur_radius=settings.blur_radius,
            faces_per_pixel=settings.faces_per_pixel,
            bin_size=settings.bin_size,
            max_faces_per_bin=settings.max_faces_per_bin,
            perspective_correct=settings.perspective_correct,
            cull_backfaces=settings.cull_backfaces,
        )
        return _fragments(pix_to_face, zbuf, bary, faces.shape[0], points.dtype)

    def _settings(self, height: int, width: int, perspective_correct: bool):
        """PyTorch3D settings for one nearest face per pixel centre, no blur."""
        return self.renderer.RasterizationSettings(
            image_size=(height, width),
            blur_radius=0.0,
            faces_per_pixel=1,
            bin_size=self.bin_size,
            max_faces_per_bin=self.max_faces_per_bin,
            perspective_correct=perspective_correct,
            cull_backfaces=self.cull_backfaces,
        )

    def _meshes(self, vertices: torch.Tensor, faces: torch.Tensor):
        """A PyTorch3D `Meshes` batch sharing one face list."""
        shared_faces = faces.long().to(vertices.device).expand(vertices.shape[0], -1, -1).contiguous()
        return self.structures.Meshes(verts=vertices.float(), faces=shared_faces)


def _import_pytorch3d_renderer():
    """`pytorch3d.renderer`, or an InputError saying how to get it."""
    try:
        return importlib.import_module("pytorch3d.renderer")
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("pytorch3d"):
            raise
        raise InputError(
            "PyTorch3D is not installed: install `easypytorch3d` on a CUDA machine or use texture=torch."
        ) from error
    except (ImportError, OSError) as error:
        raise InputError(
            f"PyTorch3D is installed but cannot load ({error}): use it on a CUDA machine or use texture=torch."
        ) from error


def _fragments(
    pix_to_face: torch.Tensor, zbuf: torch.Tensor, bary: torch.Tensor, faces_per_mesh: int, dtype: torch.dtype
) -> Fragments:
    """Our `Fragments` from PyTorch3D's outputs: packed face index -> row of `faces`, -1 depth -> +inf."""
    packed_face = pix_to_face[..., 0]
    mesh_first_face = torch.arange(packed_face.shape[0], device=packed_face.device)[:, None, None] * faces_per_mesh
    covered = packed_face >= 0
    return Fragments(
        torch.where(covered, packed_face - mesh_first_face, -1),
        torch.where(covered[..., None], bary[..., 0, :], 0.0).to(dtype),
        torch.where(covered, zbuf[..., 0], float("inf")).to(dtype),
    )
