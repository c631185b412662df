"""A learned appearance embedding: each person's box crop through MobileNetV2's early layers, averaged over the
pixels of the person (BlazePose's segmentation mask when the regressor gives one), as a unit vector.

Why early layers and a mask: on PETS09-S2L1 (frames 1–400, people 5–100 frames apart) ImageNet features of the
whole network separate identities worse than colour does; the 32-channel map at 1/8 resolution, averaged over the
person rather than the box, separates them best (benchmarks/eval_appearance.py measures every variant).
Distances are cosine distances, 1 − a·b.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models.appearance.mobilenet import MEAN, STD, MobileNetV2, load_mobilenetv2
from models.structures import InputError, PersonBatch, PoseLandmarks


class CropEmbedder:
    """B×C unit embeddings of a window's people from their frames, boxes and (optional) person masks.

    `input_size` (height, width) is what each box is stretched to; `depth` is how many of MobileNetV2's feature
    modules run (7: the 32-channel map at 1/8 resolution); `stripes` horizontal bands are pooled apart and
    concatenated (1: one average); `use_mask` weighs the pooling by the person mask when the regressor gives one.
    """

    needs_textures = False

    def __init__(
        self,
        network: MobileNetV2 | None = None,
        device: str | torch.device = "cpu",
        input_size: Sequence[int] = (128, 64),
        depth: int = 7,
        stripes: int = 1,
        use_mask: bool = True,
        batch_size: int = 32,
    ) -> None:
        if len(input_size) != 2 or min(input_size) < 16:
            raise InputError(f"appearance.encoder.input_size must be [height, width] of at least 16, got {input_size}.")
        if not 1 <= depth <= 19 or stripes < 1 or batch_size < 1:
            raise InputError(
                f"appearance.encoder needs 1 <= depth <= 19, stripes >= 1 and batch_size >= 1, got {depth}, "
                f"{stripes} and {batch_size}."
            )
        self.device = torch.device(device)
        self.network = (network if network is not None else load_mobilenetv2()).to(self.device)
        self.network = self.network.to(memory_format=torch.channels_last)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.depth, self.stripes, self.use_mask, self.batch_size = depth, stripes, use_mask, batch_size
        self._mean = torch.tensor(MEAN, device=self.device).reshape(1, 3, 1, 1)
        self._std = torch.tensor(STD, device=self.device).reshape(1, 3, 1, 1)

    @torch.inference_mode()
    def embed(
        self, frames: Sequence[np.ndarray], people: PersonBatch, landmarks: PoseLandmarks | None = None
    ) -> torch.Tensor:
        """Embeddings of `people` (their boxes in frames[frame_ids], H×W×3 uint8 RGB); `landmarks.mask` (over the
        landmarks' square regions) weighs the pooling when given and `use_mask` is set."""
        boxes = people.boxes.to(self.device, torch.float32)
        frame_ids = people.frame_ids.to(self.device)
        masks = centers = sides = None
        if self.use_mask and landmarks is not None and landmarks.mask is not None:
            regions = (landmarks.mask, landmarks.roi_center, landmarks.roi_side)
            masks, centers, sides = (values.to(self.device) for values in regions)
        chunks = []
        # `batch_size` people at a time from the frames on, so that memory does not grow with a window's people.
        for start in range(0, len(boxes), self.batch_size):
            batch = slice(start, start + self.batch_size)
            points = box_points(boxes[batch], self.input_size)
            rgb = sample_frames(frames, frame_ids[batch], points)
            mask = None
            if masks is not None:
                mask = sample_square_maps(masks[batch, None], centers[batch], sides[batch], points)
            x = ((rgb - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
            features = self.network(x, self.depth).float()
            chunks.append(pool(features, mask, self.stripes))
        if not chunks:
            return torch.zeros((0, self.embedding_size), device=self.device)
        return torch.cat(chunks)

    @property
    def embedding_size(self) -> int:
        with torch.inference_mode():
            probe = torch.zeros((1, 3, *self.input_size), device=self.device)
            return int(self.network(probe, self.depth).shape[1]) * self.stripes

    @staticmethod
    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """T×D cosine distances in [0, 2] between unit embeddings a T×E and b D×E."""
        return 1.0 - a @ b.T


def box_points(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Frame points B×H×W×2 (x, y, continuous pixels) of the pixel centres of an H×W crop stretched over each box."""
    height, width = size
    fy = (torch.arange(height, device=boxes.device, dtype=torch.float32) + 0.5) / height
    fx = (torch.arange(width, device=boxes.device, dtype=torch.float32) + 0.5) / width
    xs = boxes[:, 0:1] + fx[None] * (boxes[:, 2:3] - boxes[:, 0:1])
    ys = boxes[:, 1:2] + fy[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    return torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)


def sample_frames(frames: Sequence[np.ndarray], frame_ids: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear RGB in [0, 1] (B×3×H×W) at frame points B×H×W×2 of frames[frame_ids] (edges repeated)."""
    out = torch.empty((len(points), 3, *points.shape[1:3]), device=points.device)
    for frame_id in torch.unique(frame_ids).tolist():
        people = torch.nonzero(frame_ids == frame_id).flatten()
        image = torch.from_numpy(np.ascontiguousarray(frames[frame_id])).to(points.device)
        height, width = image.shape[:2]
        grid = points[people] * torch.tensor([2.0 / width, 2.0 / height], device=points.device) - 1.0
        source = image.permute(2, 0, 1)[None].float() / 255.0
        sampled = F.grid_sample(source, grid.reshape(1, -1, grid.shape[2], 2), mode="bilinear",
                                padding_mode="border", align_corners=False)  # fmt: skip
        out[people] = sampled.reshape(3, len(people), *points.shape[1:3]).transpose(0, 1)
    return out


def sample_square_maps(
    maps: torch.Tensor, center: torch.Tensor, side: torch.Tensor, points: torch.Tensor
) -> torch.Tensor:
    """Values B×C×H×W at frame points B×H×W×2 of per-person maps B×C×M×M over square regions (center B×2,
    side B; map pixel j covers center + ((j + 0.5) / M − 0.5)·side); zero outside the region."""
    grid = (points - center[:, None, None, :]) / side[:, None, None, None] * 2.0
    return F.grid_sample(maps.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def pool(features: torch.Tensor, mask: torch.Tensor | None, stripes: int) -> torch.Tensor:
    """B×(C·stripes) unit vectors: each horizontal band's (mask-weighted) average, normalised, concatenated."""
    batch, channels = features.shape[:2]
    weight = torch.ones_like(features[:, :1])
    if mask is not None:
        weight = F.adaptive_avg_pool2d(mask, features.shape[-2:]) + 1e-3  # an empty mask falls back to the box
    summed = F.adaptive_avg_pool2d(features * weight, (stripes, 1)).reshape(batch, channels, stripes)
    norm = F.adaptive_avg_pool2d(weight, (stripes, 1)).reshape(batch, 1, stripes)
    bands = F.normalize((summed / norm).transpose(1, 2), dim=2) / stripes**0.5
    return bands.reshape(batch, channels * stripes)
