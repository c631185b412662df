"""The `Regressor` interface every body regressor implements: person crops of a window → BodyParams."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from models.structures import BodyParams, CropSpec, PersonBatch


class Regressor(ABC):
    """Estimates SMPL parameters and cameras for a batch of person crops.

    `needs_pixels` False means the regressor reads only the crop geometry (boxes, centres, sizes), not the crop
    image; `fits_landmarks` True means its BodyParams carry landmarks, fit errors and reliability flags.
    """

    name: str
    crop_spec: CropSpec
    needs_pixels: bool = True
    fits_landmarks: bool = False

    @abstractmethod
    def predict(self, crops: PersonBatch, frames: Sequence[np.ndarray] | None = None) -> BodyParams:
        """One BodyParams row per crop, in the batch's order, on the batch's device; `frames` are the window's
        H×W×3 uint8 RGB frames that `crops.frame_ids` index (for regressors that cut their own regions)."""

    def state_dict(self) -> dict:
        """What the regressor carries from one window to the next, as plain values and arrays (for a run's
        checkpoint); nothing unless a regressor overrides it (BlazePose's warm starts do)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` returned."""
