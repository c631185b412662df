"""UV texture of each person, sampled from its image through its posed body mesh (as 4D-Humans' texture sampler).

For every texel of the body model's UV layout that a face covers: its 3D point on the posed mesh (barycentric
blend of the face's vertices), projected into the image; the texel is visible when the image pixel it lands on is
covered by the mesh at a rendered depth no nearer than the texel's own depth minus `depth_tolerance`, and (when the
image carries a person mask as a 4th channel) the mask there is at least one half. Visible texels take the image
colour at their projection (bilinear `grid_sample`).

Which image: any per-person image with its pinhole camera. The pipeline samples the 256×256 regressor crops (as
4D-Humans does): `crop_camera` gives the crop's focal length and principal point for the full-frame `cam_t`, and
`crops_to_rgb` undoes the crops' ImageNet normalisation. Vertices are always in the camera frame (x right, y down,
z forward, metres): body-model vertices plus `BodyParams.cam_t`; the crop camera is that same camera, zoomed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.body.body_model import BodyModel
from models.camera import camera_pair
from models.structures import BodyParams, CropSpec, InputError, PersonBatch
from models.texture.rasterizer import Rasterizer
from models.texture.uv_map import uv_texel_map

MASK_THRESHOLD = 0.5  # a texel whose image pixel has a person-mask value below this is not visible


class TextureSampler:
    """Samples B×4×S×S UV textures (RGB in [0, 1], then visibility 0/1) of a batch of posed body meshes."""

    def __init__(
        self,
        body_model: BodyModel,
        rasterizer: Rasterizer,
        uv_size: int = 256,
        depth_tolerance: float = 0.03,
        depth_map_scale: float = 1.0,
    ) -> None:
        """`body_model` supplies faces and UV layout; `depth_tolerance` (metres, camera z) is how far behind the
        rendered surface a texel may lie and still count as visible (covers pixel discretisation, not limbs);
        `depth_map_scale` is the resolution of the depth map used for that test relative to the image's (below 1
        is cheaper: the rasterizer's cost grows with pixels)."""
        uv = body_model.uv
        if uv is None:
            raise InputError("TextureSampler needs a body model file with UV coordinates ('vt' and 'ft').")
        if not depth_tolerance > 0:
            raise InputError(f"TextureSampler `depth_tolerance` must be positive metres, got {depth_tolerance}.")
        if not 0 < depth_map_scale <= 1:
            raise InputError(f"TextureSampler `depth_map_scale` must lie in (0, 1], got {depth_map_scale}.")
        texels = uv_texel_map(uv.vt, uv.ft, uv_size)
        faces = body_model.faces.detach().cpu().long()
        self.rasterizer = rasterizer
        self.uv_size = int(uv_size)
        self.depth_tolerance = float(depth_tolerance)
        self.depth_map_scale = float(depth_map_scale)
        self.faces = faces
        self.texel_index = texels.covered.reshape(-1).nonzero().squeeze(1)  # N covered texels, row-major in S×S
        self.texel_vertices = faces[texels.face_index.reshape(-1)[self.texel_index]]  # N×3 vertex rows
        self.texel_bary = texels.bary.reshape(-1, 3)[self.texel_index]  # N×3
        self._on_device: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def sample(
        self,
        images: torch.Tensor,
        vertices: torch.Tensor,
        focal: float | torch.Tensor,
        principal_point: torch.Tensor,
    ) -> torch.Tensor:
        """Textures B×4×S×S from per-person images B×C×H×W (C = 3: RGB in [0, 1]; C = 4: plus a person mask in
        [0, 1]) and their camera-frame vertices B×V×3, seen with `focal` and `principal_point` in that image's
        pixels (as `Rasterizer.rasterize` takes them). Invisible and uncovered texels are 0 in all four channels."""
        _check_images(images, vertices)
        batch, channels, height, width = images.shape
        faces, texel_index, texel_vertices, texel_bary = self._buffers(vertices.device)
        textures = images.new_zeros((batch, 4, self.uv_size * self.uv_size))
        if batch == 0:
            return textures.reshape(batch, 4, self.uv_size, self.uv_size)
        focal_xy = camera_pair(focal, batch, vertices, "focal")
        centre_xy = camera_pair(principal_point, batch, vertices, "principal_point")
        scale = self.depth_map_scale
        depth_height, depth_width = max(1, round(height * scale)), max(1, round(width * scale))
        depth = self.rasterizer.rasterize(
            vertices, faces, focal_xy * scale, centre_xy * scale, (depth_height, depth_width)
        ).depth

        x, y, z = _texel_points(vertices, texel_vertices, texel_bary.to(vertices.dtype))  # B×N each
        safe_z = torch.where(z > 0, z, torch.ones_like(z))
        u = focal_xy[:, :1] * x / safe_z + centre_xy[:, :1]
        v = focal_xy[:, 1:] * y / safe_z + centre_xy[:, 1:]
        column, row = torch.floor(u * scale), torch.floor(v * scale)
        in_image = (column >= 0) & (column < depth_width) & (row >= 0) & (row < depth_height) & (z > 0)
        pixel = (row.clamp(0, depth_height - 1) * depth_width + column.clamp(0, depth_width - 1)).long()
        rendered = depth.reshape(batch, -1).gather(1, pixel)
        visible = in_image & torch.isfinite(rendered) & (z <= rendered + self.depth_tolerance)

        grid = torch.stack([2 * u / width - 1, 2 * v / height - 1], dim=-1)[:, None]  # B×1×N×2
        sampled = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", align_corners=False)[:, :, 0]
        if channels == 4:
            visible &= sampled[:, 3] >= MASK_THRESHOLD
        texel_values = torch.empty((batch, 4, len(texel_index)), dtype=images.dtype, device=images.device)
        texel_values[:, 3] = visible
        torch.mul(sampled[:, :3], texel_values[:, 3:], out=texel_values[:, :3])
        flat_values = texel_values.reshape(batch * 4, -1)
        textures.view(batch * 4, -1).scatter_(1, texel_index.expand(batch * 4, -1), flat_values)
        return textures.reshape(batch, 4, self.uv_size, self.uv_size)

    def sample_crops(
        self, people: PersonBatch, params: BodyParams, vertices: torch.Tensor, crop_spec: CropSpec
    ) -> torch.Tensor:
        """Textures B×4×S×S of a window's people from their regressor crops: `vertices` B×V×3 are the posed body
        meshes in the full-frame camera (`params.cam_t` applied); `params` gives that camera."""
        focal, principal_point = crop_camera(
            params.focal_length, params.image_size, people.center, people.size, people.crops.shape[-1]
        )
        return self.sample(crops_to_rgb(people.crops, crop_spec), vertices, focal, principal_point)

    def _buffers(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Faces and texel tables on `device`, copied there once."""
        if device not in self._on_device:
            tables = (self.faces, self.texel_index, self.texel_vertices, self.texel_bary)
            self._on_device[device] = tuple(t.to(device) for t in tables)
        return self._on_device[device]


def _texel_points(
    vertices: torch.Tensor, texel_vertices: torch.Tensor, texel_bary: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, y, z (B×N each) of N texels' 3D points on B meshes: each the barycentric blend of its face's vertices.

    Vertices are laid out coordinate × mesh × vertex so that each face corner is one column gather and the result
    comes out as three contiguous B×N planes; several times faster on the CPU than gathering B×N×3×3 corners.
    """
    batch, vertex_count, _ = vertices.shape
    planes = vertices.permute(2, 0, 1).reshape(3 * batch, vertex_count)
    points = planes.index_select(1, texel_vertices[:, 0]) * texel_bary[:, 0]
    for corner in (1, 2):
        points.addcmul_(planes.index_select(1, texel_vertices[:, corner]), texel_bary[:, corner])
    return points.reshape(3, batch, -1).unbind(0)


def crop_camera(
    focal_length: torch.Tensor | float,
    image_size: torch.Tensor,
    center: torch.Tensor,
    size: torch.Tensor,
    crop_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Focal length B and principal point B×2 (crop pixels) of the crops that `models.crops.make_crops` cuts, for
    the full-frame camera with `focal_length` (B or scalar) and principal point at the centre of `image_size` B×2
    (width, height); `center` B×2 and `size` B are the crops' square regions in frame pixels."""
    zoom = crop_size / size.to(torch.float32)
    focal = torch.as_tensor(focal_length, dtype=torch.float32, device=size.device) * zoom
    # make_crops samples crop pixel index j at frame pixel index center + (j - S/2) · size/S; in continuous
    # coordinates (pixel index + 0.5) that maps frame point u to crop point (u - center - 0.5) · zoom + S/2 + 0.5.
    frame_centre = image_size.to(torch.float32) / 2
    principal_point = (frame_centre - center.to(torch.float32) - 0.5) * zoom[:, None] + crop_size / 2 + 0.5
    return focal, principal_point


def crops_to_rgb(crops: torch.Tensor, crop_spec: CropSpec) -> torch.Tensor:
    """Regressor crops B×C×S×S (ImageNet-normalised RGB, then an optional mask) back to RGB in [0, 1] (mask kept)."""
    mean = torch.tensor(crop_spec.mean, dtype=crops.dtype, device=crops.device).reshape(1, 3, 1, 1)
    std = torch.tensor(crop_spec.std, dtype=crops.dtype, device=crops.device).reshape(1, 3, 1, 1)
    rgb = (crops[:, :3] * std + mean).clamp(0, 1)
    return torch.cat([rgb, crops[:, 3:]], dim=1)


def _check_images(images: torch.Tensor, vertices: torch.Tensor) -> None:
    """Reject images that are not B×3×H×W or B×4×H×W floating point matching the vertices' batch."""
    if images.ndim != 4 or images.shape[1] not in (3, 4) or not images.is_floating_point():
        raise InputError(f"TextureSampler images must be float B×3×H×W or B×4×H×W, got {tuple(images.shape)}.")
    if vertices.ndim != 3 or vertices.shape[0] != images.shape[0] or vertices.shape[-1] != 3:
        raise InputError(
            f"TextureSampler vertices must be B×V×3 with B={images.shape[0]} like the images, "
            f"got {tuple(vertices.shape)}."
        )
