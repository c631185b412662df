"""Shot changes (cuts) in a video, found as PHALP finds them: with PySceneDetect (`scenedetect-headless`).

Each frame is shrunk to `width` pixels wide (as `scenedetect.detect` does) and fed in order to PySceneDetect's
ContentDetector, which scores the mean change of hue, saturation and lightness from the previous frame and reports
a cut above `threshold`. On PETS09-S2L1 the score stays below 6 within the shot; a cut between two real videos
scores 40–73. The detector needs no lookahead, so a cut is known when its frame is tracked.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scenedetect import ContentDetector, FrameTimecode

from models.structures import Frame, InputError


class ShotDetector:
    """Marks the frames that start a new shot, frame after frame (state: the previous frame)."""

    def __init__(self, threshold: float = 27.0, width: int = 256, min_shot_length: int = 1) -> None:
        if not threshold > 0 or width < 16 or min_shot_length < 1:
            raise InputError(
                f"shots needs threshold > 0, width >= 16 and min_shot_length >= 1, got {threshold}, {width} and "
                f"{min_shot_length}."
            )
        self.threshold, self.width, self.min_shot_length = float(threshold), int(width), int(min_shot_length)
        self._detector = ContentDetector(threshold=self.threshold, min_scene_len=self.min_shot_length)
        self._count = 0
        self._last: np.ndarray | None = None  # the last frame as fed to the detector, for a checkpoint

    def state_dict(self) -> dict:
        """Frames seen, the last one as fed to the detector and when the detector last scored above the threshold."""
        last_above = self._detector._flash_filter._last_above  # scenedetect 0.7 keeps it private
        return {"count": self._count, "last": self._last,
                "last_above": None if last_above is None else last_above.frame_num}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` returned by feeding the last frame again to a fresh detector (its previous
        frame is all it keeps), then its flash filter's memory."""
        self._detector = ContentDetector(threshold=self.threshold, min_scene_len=self.min_shot_length)
        self._count, self._last = int(state["count"]), state["last"]
        if self._last is not None:
            self._detector.process_frame(FrameTimecode(self._count - 1, 25.0), self._last)
        last_above = state["last_above"]
        self._detector._flash_filter._last_above = None if last_above is None else FrameTimecode(last_above, 25.0)

    def cuts(self, frames: Sequence[Frame]) -> list[bool]:
        """For each frame (in video order, continuing from the previous call) whether it starts a new shot; the
        first frame of the video does not."""
        flags = []
        for frame in frames:
            height, width = frame.image.shape[:2]
            size = (self.width, max(1, round(height * self.width / width)))
            small = cv2.cvtColor(cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
            found = self._detector.process_frame(FrameTimecode(self._count, 25.0), small)
            self._last = small
            flags.append(any(cut.frame_num == self._count for cut in found) and self._count > 0)
            self._count += 1
        return flags
