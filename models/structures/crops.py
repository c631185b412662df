"""Person crops of a window and the spec of how a regressor wants them cut."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CropSpec:
    """How a regressor wants its crops: output side, box aspect (w, h), rescale factor, RGB mean/std in [0, 1]."""

    size: int = 256
    aspect_wh: tuple[float, float] = (192.0, 256.0)
    rescale: float = 1.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        for name in ("aspect_wh", "mean", "std"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))


DEFAULT_CROP_SPEC = CropSpec()


@dataclass
class PersonBatch:
    """B person crops with the geometry needed to map results back to their frames.

    crops: B×C×S×S float32; channels 0-2 are RGB normalised as (value/255 - mean) / std, channel 3 (present when
    masks were given) is the person's mask resampled to [0, 1]. boxes: B×4 detector boxes xyxy in frame pixels.
    center: B×2 box centre; size: B side in frame pixels of the square region the crop covers (4D-Humans'
    `box_size`). frame_ids: B position of the person's frame in the window (0-based); det_ids: B index of the
    detection within its frame. image_size: B×2 (width, height) of the person's frame.
    """

    crops: torch.Tensor
    boxes: torch.Tensor
    center: torch.Tensor
    size: torch.Tensor
    frame_ids: torch.Tensor
    det_ids: torch.Tensor
    image_size: torch.Tensor

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    @property
    def has_mask(self) -> bool:
        return self.crops.shape[1] == 4

    def index(self, i: slice | torch.Tensor) -> PersonBatch:
        """The people selected by a slice, index tensor or boolean mask."""
        return PersonBatch(*(getattr(self, name)[i] for name in self.__dataclass_fields__))
