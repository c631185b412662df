"""The batched `Detector` interface every detection backend implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from models.structures import Detections, Frame, ScoreThresholds


class Detector(ABC):
    """Finds people in a window of frames at once, so that network backends can batch.

    `thresholds` says how its scores are read: each detector has its own score scale.
    """

    thresholds: ScoreThresholds

    @abstractmethod
    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One `Detections` per frame, in the order given."""

    def reset(self) -> None:
        """Forget what earlier windows taught (detectors that plan from the people found so far); the next call
        starts as on a new video."""

    def state_dict(self) -> dict:
        """What earlier windows taught, as plain values (for a checkpoint); stateless detectors have none."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` returned."""

