"""Public detections from a MOTChallenge `det.txt` file, served through the `Detector` interface."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from models.detection.detector import Detector
from models.mot_text import read_mot_table
from models.structures import Detections, Frame, InputError, ScoreThresholds, xywh_to_xyxy

DET_LAYOUT = ("frame", "id", "x", "y", "w", "h", "score")


def find_det_file(path: str | Path) -> Path | None:
    """The `det/det.txt` of a MOT sequence folder, the path itself when it is a file, else None."""
    path = Path(path)
    if path.is_file() and path.suffix == ".txt":
        return path
    candidate = path / "det" / "det.txt"
    return candidate if candidate.is_file() else None


def read_det_file(path: Path) -> dict[int, np.ndarray]:
    """Rows `frame,id,x,y,w,h,score,...` grouped by frame as N×5 float32 arrays (x1, y1, x2, y2, score)."""
    table = read_mot_table(path, DET_LAYOUT)
    table = table[np.argsort(table[:, 0], kind="stable")]
    boxes = xywh_to_xyxy(table[:, 2:6])
    rows = np.concatenate([boxes, table[:, 6:7]], axis=1).astype(np.float32)
    frames, starts = np.unique(table[:, 0].astype(np.int64), return_index=True)
    return {int(f): chunk for f, chunk in zip(frames, np.split(rows, starts[1:]))}


class MotFileDetector(Detector):
    """Serves the detections of a `det.txt` (or a MOT sequence folder's `det/det.txt`) frame by frame.

    `min_score` and `thresholds` are on the file's own score scale (MOT15 scores are not probabilities); boxes
    lower than `min_height` pixels are dropped.
    """

    def __init__(
        self,
        path: str,
        thresholds: ScoreThresholds,
        min_score: float = float("-inf"),
        min_height: float = 0.0,
    ) -> None:
        det_file = find_det_file(path)
        if det_file is None:
            raise InputError(f"No public detections at {path}: expected a det.txt file or a folder with det/det.txt.")
        self.path = det_file
        self.thresholds = thresholds
        self.min_score = float(min_score)
        self.min_height = float(min_height)
        self._by_frame = read_det_file(det_file)

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self._frame_detections(frame.index) for frame in frames]

    def _frame_detections(self, index: int) -> Detections:
        rows = self._by_frame.get(index)
        if rows is None:
            return Detections.empty()
        keep = (rows[:, 4] >= self.min_score) & (rows[:, 3] - rows[:, 1] >= self.min_height)
        return Detections(rows[keep, :4], rows[keep, 4])
