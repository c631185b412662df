"""Vectorised z-buffer rasterizer in plain torch (CPU and CUDA), with no Python loop over faces or pixels.

Every face of the batch is set up at once: its bounding box of pixel centres and affine coefficients giving its
screen barycentrics and z-test value at any pixel of that box. Faces are grouped by bounding-box area into
power-of-two size classes; each class is evaluated as one dense (faces × slots) block, so that per-face values
broadcast instead of being gathered per pixel. One `scatter_reduce(amin)` per block on a packed int64 key
(order-preserving float32 z-test bits << 32 | face) keeps the nearest face per pixel; only the winners then get
barycentrics and depth. Blocks hold at most `max_candidates` slots, which bounds memory for any mesh or batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from models.structures import InputError
from models.texture.rasterizer import Fragments, Rasterizer, check_image_size, check_mesh

_EMPTY_KEY = torch.iinfo(torch.int64).max
_LOW_32_BITS = 0xFFFFFFFF
_FAR_KEY = 0x7F800000 << 32  # packed key of a +inf z-test value: slots outside every face
_MAX_PIXELS = 2**24  # slot and pixel offsets are exact float32 integers up to this
_MIN_DOUBLED_AREA = 1e-9  # square pixels; thinner faces cover no pixel centre reliably and are dropped


@dataclass
class _FaceTable:
    """The faces of the flattened batch that may cover a pixel centre, sorted by size class.

    `coefficients` (3×4×F) holds, for the values (l0, l1, l2, z-test) and relative to the centre of the bounding
    box's top-left pixel: the values there, their steps per pixel to the right and their steps per pixel down.
    The z-test value is affine in the image and smaller is nearer: -1/z with perspective, the depth without.
    """

    flat_index: torch.Tensor  # row of the B*F faces of the batch
    row_of_flat: torch.Tensor  # inverse of flat_index: the table row of each of the B*F faces (-1 if dropped)
    pixel0: torch.Tensor  # flat index into the B×H×W image batch of the bounding box's top-left pixel
    column0: torch.Tensor
    row0: torch.Tensor
    width: torch.Tensor
    height: torch.Tensor
    size_class: torch.Tensor  # ceil(log2(width * height)), ascending
    coefficients: torch.Tensor
    vertex_depth: torch.Tensor  # vertex × F


class TorchRasterizer(Rasterizer):
    """Built-in z-buffer rasterizer: nearest face per pixel centre (equal depths: the lower face index)."""

    def __init__(
        self,
        cull_backfaces: bool = False,
        near: float = 1e-3,
        max_candidates: int = 1_000_000,
        edge_tolerance: float = 1e-5,
    ) -> None:
        """`cull_backfaces` drops faces seen from behind (counter-clockwise seen from outside is the front, as in
        PyTorch3D); `near` drops perspective faces with a vertex at z < near; `max_candidates` bounds the (face,
        pixel) slots evaluated at once (about 50 bytes each); `edge_tolerance` (barycentric units) keeps a pixel
        centre on an edge shared by two faces inside at least one of them despite rounding."""
        self.cull_backfaces = cull_backfaces
        self.near = near
        self.max_candidates = max_candidates
        self.edge_tolerance = edge_tolerance

    def rasterize_screen(
        self,
        points: torch.Tensor,
        faces: torch.Tensor,
        image_size: tuple[int, int],
        perspective_correct: bool = False,
    ) -> Fragments:
        check_mesh(points, faces, "points")
        height, width = check_image_size(image_size)
        if height * width > _MAX_PIXELS:
            raise InputError(f"TorchRasterizer handles images up to {_MAX_PIXELS:,} pixels, got {height}×{width}.")
        fragments = Fragments.background(points.shape[0], (height, width), points.device, points.dtype)
        table = self._face_table(points, faces.long().to(points.device), (height, width), perspective_correct)
        if table.flat_index.numel() == 0:
            return fragments
        keys = torch.full((fragments.face_index.numel(),), _EMPTY_KEY, dtype=torch.int64, device=points.device)
        for start, stop, slots in self._blocks(table.size_class):
            self._scatter_nearest(keys, table, start, stop, slots, width)
        self._resolve(keys, table, fragments, faces.shape[0], perspective_correct)
        return fragments

    def _face_table(
        self, points: torch.Tensor, faces: torch.Tensor, image_size: tuple[int, int], perspective_correct: bool
    ) -> _FaceTable:
        """Bounding boxes, size classes and affine coefficients of every face that survives the culling tests.

        Per-face values are kept as contiguous rows over the faces (coordinate × vertex × face), the layout in
        which torch's element-wise kernels are fastest.
        """
        height, width = image_size
        batch, vertex_count = points.shape[:2]
        mesh_offset = torch.arange(batch, device=faces.device)[:, None] * vertex_count
        vertex_rows = (faces.t()[:, None, :] + mesh_offset).reshape(-1)  # vertex × mesh × face
        by_coordinate = points.float().reshape(-1, 3).t().clone()  # (u, v, depth) × (B*V)
        # A vertex no face may use (non-finite, or before the near plane) makes its faces' areas NaN: they fail
        # every test below. Faces are then dropped in two rounds, area and facing first, so that the bounds are
        # computed for the survivors only (culling halves a closed mesh).
        unusable = ~torch.isfinite(by_coordinate).all(dim=0)
        if perspective_correct:
            unusable |= by_coordinate[2] <= self.near
        by_coordinate[:2, unusable] = float("nan")
        x, y = by_coordinate[:2].index_select(1, vertex_rows).reshape(2, 3, -1)
        doubled_area = (x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0])
        if self.cull_backfaces:
            facing = doubled_area < -_MIN_DOUBLED_AREA
        else:
            facing = doubled_area.abs() > _MIN_DOUBLED_AREA
        facing &= doubled_area.abs() < float("inf")
        candidates = facing.nonzero().squeeze(1)
        x, y = x.index_select(1, candidates), y.index_select(1, candidates)
        column0 = torch.ceil(x.amin(0) - 0.5).clamp_(0, width)
        column1 = torch.floor(x.amax(0) - 0.5).clamp_(-1, width - 1)
        row0 = torch.ceil(y.amin(0) - 0.5).clamp_(0, height)
        row1 = torch.floor(y.amax(0) - 0.5).clamp_(-1, height - 1)
        box_width, box_height = column1 - column0 + 1, row1 - row0 + 1
        covering = ((box_width > 0) & (box_height > 0)).nonzero().squeeze(1)
        area = box_width.index_select(0, covering) * box_height.index_select(0, covering)
        # int32 sorts faster; the order within a size class is free.
        size_class, order = torch.sort(torch.ceil(torch.log2(area)).int())
        position = covering.index_select(0, order)
        flat_index = candidates.index_select(0, position)

        corner_rows = vertex_rows.reshape(3, -1).index_select(1, flat_index).reshape(-1)
        x, y, depth = by_coordinate.index_select(1, corner_rows).reshape(3, 3, -1)
        box = torch.stack([column0, row0, box_width, box_height, doubled_area.index_select(0, candidates)])
        column0, row0, box_width, box_height, doubled_area = box.index_select(1, position)
        # Screen barycentric l_k is the doubled area spanned by the pixel and the edge opposite vertex k (rows k).
        following = torch.tensor([1, 2, 0], device=faces.device)
        previous = torch.tensor([2, 0, 1], device=faces.device)
        x_following, y_following = x.index_select(0, following), y.index_select(0, following)
        step_right = (y_following - y.index_select(0, previous)) / doubled_area
        step_down = (x.index_select(0, previous) - x_following) / doubled_area
        at_origin = step_right * (column0 + 0.5 - x_following) + step_down * (row0 + 0.5 - y_following)
        coefficients = torch.empty((3, 4, len(flat_index)), device=points.device)  # (origin, right, down) × value
        test_value = -1.0 / depth if perspective_correct else depth
        for row, bary_row in enumerate((at_origin, step_right, step_down)):
            coefficients[row, :3] = bary_row
            torch.sum(bary_row * test_value, 0, out=coefficients[row, 3])
        column0, row0 = column0.long(), row0.long()
        mesh = torch.div(flat_index, max(faces.shape[0], 1), rounding_mode="floor")
        row_of_flat = torch.full((vertex_rows.numel() // 3,), -1, dtype=torch.int64, device=faces.device)
        row_of_flat.index_copy_(0, flat_index, torch.arange(len(flat_index), device=flat_index.device))
        return _FaceTable(
            flat_index=flat_index,
            row_of_flat=row_of_flat,
            pixel0=(mesh * height + row0) * width + column0,
            column0=column0,
            row0=row0,
            width=box_width,
            height=box_height,
            size_class=size_class,
            coefficients=coefficients,
            vertex_depth=depth,
        )

    def _blocks(self, size_class: torch.Tensor) -> list[tuple[int, int, int]]:
        """(start, stop, slots) face ranges of one size class each, with at most max_candidates slots in all."""
        counts = torch.bincount(size_class.long()).tolist()
        blocks, start = [], 0
        for exponent, count in enumerate(counts):
            slots = 2**exponent
            faces_per_block = max(1, self.max_candidates // slots)
            for block_start in range(start, start + count, faces_per_block):
                blocks.append((block_start, min(block_start + faces_per_block, start + count), slots))
            start += count
        return blocks

    def _scatter_nearest(
        self, keys: torch.Tensor, table: _FaceTable, start: int, stop: int, slots: int, width: int
    ) -> None:
        """Write the packed (z-test, face) key of every pixel centre inside faces[start:stop] into `keys` by min.

        Slots are laid out slot × face (faces contiguous) so that per-face values broadcast along long rows.
        """
        slot = torch.arange(slots, device=keys.device, dtype=torch.float32)[:, None]
        box_width = table.width[start:stop]
        down = torch.floor((slot + 0.5) / box_width)
        right = torch.addcmul(slot, down, box_width, value=-1)
        origin, step_right, step_down = table.coefficients[:, :, None, start:stop]
        l0, l1, l2, test = torch.addcmul(origin, step_right, right).addcmul_(step_down, down)
        inside = (torch.minimum(torch.minimum(l0, l1), l2) >= -self.edge_tolerance) & (down < table.height[start:stop])
        packed = _pack(torch.where(inside, test, float("inf")), table.flat_index[start:stop])
        pixel = torch.addcmul(right, down, torch.tensor(float(width), device=keys.device)).long()
        pixel = (pixel + table.pixel0[start:stop]).clamp_(max=keys.numel() - 1)
        keys.scatter_reduce_(0, pixel.view(-1), packed.view(-1), "amin")

    def _resolve(
        self, keys: torch.Tensor, table: _FaceTable, fragments: Fragments, faces_per_mesh: int, perspective: bool
    ) -> None:
        """Fill `fragments` at covered pixels with the winning face, its barycentrics and its depth."""
        height, width = fragments.face_index.shape[1:]
        pixel = (keys < _FAR_KEY).nonzero().squeeze(1)
        flat_face = keys.index_select(0, pixel) & _LOW_32_BITS
        face = table.row_of_flat.index_select(0, flat_face)
        in_image = pixel % (height * width)
        row = torch.div(in_image, width, rounding_mode="floor")
        right = (in_image - row * width - table.column0.index_select(0, face)).float()
        down = (row - table.row0.index_select(0, face)).float()
        coefficients = table.coefficients.reshape(12, -1).index_select(1, face).reshape(3, 4, -1)
        origin, step_right, step_down = coefficients[:, :3]
        bary = (origin + step_right * right + step_down * down).clamp_(min=0)
        bary = bary / bary.sum(0)
        vertex_depth = table.vertex_depth.index_select(1, face)
        if perspective:
            weight = bary / vertex_depth
            inverse_depth = weight.sum(0)
            bary, depth = weight / inverse_depth, 1.0 / inverse_depth
        else:
            depth = (bary * vertex_depth).sum(0)
        fragments.face_index.view(-1).index_copy_(0, pixel, flat_face % faces_per_mesh)
        fragments.bary.view(-1, 3).index_copy_(0, pixel, bary.t().to(fragments.bary.dtype))
        fragments.depth.view(-1).index_copy_(0, pixel, depth.to(fragments.depth.dtype))


def _pack(value: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered like (float32 value, face): the value's bits made order-preserving, then the face."""
    bits = value.contiguous().view(torch.int32)
    ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return (ordered.long() << 32) | face
