"""MOTChallenge text files (`frame,id,x,y,w,h,score,...` rows, frames from 1, boxes as top-left and size): the one
reader and the one row writer shared by public detections, the evaluator and the results writer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.structures import InputError


def read_mot_table(path: str | Path, layout: Sequence[str]) -> np.ndarray:
    """The first len(`layout`) numbers of every non-empty line of a MOT file as an N×C float64 table (file order).

    `layout` names the columns wanted, starting `frame,id,x,y,w,h`. A line that is not numbers, has too few columns,
    a frame below 1, a fractional frame or id, a non-finite value or a negative width or height is an InputError
    naming the file and the line."""
    path = Path(path)
    rows: list[list[float]] = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                text = line.strip()
                if text:
                    rows.append(_parse_row(text, path, number, layout))
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file.") from None
    return np.array(rows, dtype=np.float64).reshape(-1, len(layout))


def _parse_row(text: str, path: Path, number: int, layout: Sequence[str]) -> list[float]:
    try:
        values = [float(field) for field in text.split(",")[: len(layout)]]
    except ValueError:
        values = []
    if len(values) < len(layout) or not all(math.isfinite(value) for value in values):
        raise InputError(
            f"{path} line {number}: expected comma-separated numbers {','.join(layout)}, got '{text[:80]}'."
        )
    frame, track_id, _, _, width, height = values[:6]
    if not frame.is_integer() or frame < 1 or not track_id.is_integer() or width < 0 or height < 0:
        raise InputError(
            f"{path} line {number}: expected a whole frame number >= 1, a whole id and a non-negative width and "
            f"height, got '{text[:80]}'."
        )
    return values


def mot_rows(frame: int, track_ids: np.ndarray, boxes_xyxy: np.ndarray, scores: np.ndarray) -> list[str]:
    """MOTChallenge result rows `frame,id,x,y,w,h,score,-1,-1,-1` of one frame's boxes (xyxy pixels)."""
    return [
        f"{frame},{track_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.3f},-1,-1,-1\n"
        for track_id, (x1, y1, x2, y2), score in zip(track_ids.tolist(), boxes_xyxy.tolist(), scores.tolist())
    ]
