"""People found in one frame, and how a tracker reads a detector's scores."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    """People found in one frame: boxes xyxy float32 pixels (N×4), scores (N,), optional masks (N×H×W bool)."""

    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.boxes) != len(self.scores):
            raise ValueError(f"Detections got {len(self.boxes)} boxes but {len(self.scores)} scores.")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def select(self, keep: np.ndarray) -> "Detections":
        """The subset picked by a boolean mask or index array, every per-detection field included."""
        return Detections(
            self.boxes[keep],
            self.scores[keep],
            None if self.masks is None else self.masks[keep],
            {k: v[keep] for k, v in self.extras.items()},
        )


@dataclass(frozen=True)
class ScoreThresholds:
    """How the tracker reads a detector's scores, on that detector's own scale.

    `high`: confident detections (first association stage); `low`: weaker ones that may only extend confirmed
    tracks; `new_track`: the least score that starts a track.
    """

    high: float
    low: float
    new_track: float

    def __post_init__(self) -> None:
        if not self.low <= self.high <= self.new_track:
            raise ValueError(f"Score thresholds must satisfy low <= high <= new_track, got {self}.")
