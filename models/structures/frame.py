"""The frame record that every video source yields."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded frame: 1-based MOT frame number, time in seconds, RGB uint8 image (H×W×3)."""

    index: int
    time: float
    image: np.ndarray

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
