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


def read_det_file(path: Path, rank: bool = False) -> dict[int, np.ndarray]:
    """Rows `frame,id,x,y,w,h,score,...` grouped by frame as N×5 float32 arrays (x1, y1, x2, y2, score); with
    `rank`, each score is replaced by the fraction of the file's scores at or below it (computed in float64, so
    that no rescaling of the file's scores changes the result)."""
    table = read_mot_table(path, DET_LAYOUT)
    table = table[np.argsort(table[:, 0], kind="stable")]
    scores = table[:, 6]
    if rank:
        scores = np.searchsorted(np.sort(scores), scores, side="right") / max(len(scores), 1)
    boxes = xywh_to_xyxy(table[:, 2:6])
    rows = np.concatenate([boxes, scores[:, None]], axis=1).astype(np.float32)
    frames, starts = np.unique(table[:, 0].astype(np.int64), return_index=True)
    return {int(f): chunk for f, chunk in zip(frames, np.split(rows, starts[1:]))}


class MotFileDetector(Detector):
    """Serves the detections of a `det.txt` (or a MOT sequence folder's `det/det.txt`) frame by frame.

    Detection files come from many detectors, each with its own score scale (MOT15's run from about −1 to 140,
    MOT17's FRCNN gives probabilities). With `scores: rank` (the default) every score becomes its rank in the
    file's own distribution, the fraction of the file's scores at or below it, in (0, 1]: thresholds then mean the
    same on every file ("the weakest quarter"), and tracks do not change when a file's scores are rescaled or
    shifted. `scores: raw` keeps the file's values. `min_score` and `thresholds` are on the chosen scale; boxes
    lower than `min_height` pixels are dropped.
    """

    def __init__(
        self,
        path: str,
        thresholds: ScoreThresholds,
        min_score: float = float("-inf"),
        min_height: float = 0.0,
        scores: str = "rank",
    ) -> None:
        if scores not in ("rank", "raw"):
            raise InputError(f"detector.scores must be rank or raw, got {scores!r}.")
        det_file = find_det_file(path)
        if det_file is None:
            raise InputError(f"No public detections at {path}: expected a det.txt file or a folder with det/det.txt.")
        self.path = det_file
        self.thresholds = thresholds
        self.min_score = float(min_score)
        self.min_height = float(min_height)
        self._by_frame = read_det_file(det_file, rank=scores == "rank")

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        return [self._frame_detections(frame.index) for frame in frames]

    def _frame_detections(self, index: int) -> Detections:
        rows = self._by_frame.get(index)
        if rows is None:
            return Detections.empty()
        keep = (rows[:, 4] >= self.min_score) & (rows[:, 3] - rows[:, 1] >= self.min_height)
        return Detections(rows[keep, :4], rows[keep, 4])

