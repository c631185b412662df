"""Read MOTChallenge text files (`frame,id,x,y,w,h,conf,...`) into arrays, with an optional frame range."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.mot_text import read_mot_table
from models.structures import InputError
from tracker.schema import MOT_FILE

GT_FILE_IN_SEQUENCE = Path("gt") / "gt.txt"
RESULTS_LAYOUT = ("frame", "id", "x", "y", "w", "h")
GT_LAYOUT = (*RESULTS_LAYOUT, "conf")


@dataclass(frozen=True)
class MotBoxes:
    """All boxes of one MOT file: `frames` and `ids` (N,) int64, `boxes` (N, 4) float64 as x, y, w, h."""

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def parse_frame_range(text: str) -> tuple[int, int]:
    """Parse `FIRST-LAST` (1-based, inclusive, e.g. `1-400`) into a non-empty frame range."""
    first_text, dash, last_text = text.partition("-")
    if not dash or not first_text.strip().isdigit() or not last_text.strip().isdigit():
        raise InputError(f"Frame range '{text}' is not of the form FIRST-LAST with whole numbers, e.g. 1-400.")
    first, last = int(first_text), int(last_text)
    if first < 1 or last < first:
        raise InputError(f"Frame range '{text}' is empty: expected 1 <= FIRST <= LAST.")
    return first, last


def locate_gt_file(path: str | Path) -> Path:
    """Return the ground-truth file for `path`: the file itself, or `gt/gt.txt` inside a MOT sequence folder."""
    path = Path(path)
    return path / GT_FILE_IN_SEQUENCE if path.is_dir() else path


def locate_results_file(path: str | Path) -> Path:
    """Return the results file for `path`: the file itself, or `tracks.mot.txt` inside a phalanx run folder."""
    path = Path(path)
    return path / MOT_FILE if path.is_dir() else path


def load_mot_file(path: str | Path, frames: tuple[int, int] | None = None, is_gt: bool = False) -> MotBoxes:
    """Load a MOT file, keeping rows inside `frames` (inclusive); for ground truth, rows with conf == 0 are dropped."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{'Ground-truth' if is_gt else 'Results'} file {path} does not exist.")
    table = read_mot_table(path, GT_LAYOUT if is_gt else RESULTS_LAYOUT)
    keep = np.ones(len(table), dtype=bool)
    if is_gt:
        keep &= table[:, 6] != 0
    if frames is not None:
        keep &= (table[:, 0] >= frames[0]) & (table[:, 0] <= frames[1])
    table = table[keep]
    boxes = MotBoxes(frames=table[:, 0].astype(np.int64), ids=table[:, 1].astype(np.int64), boxes=table[:, 2:6].copy())
    _reject_repeated_ids(boxes, path)
    return boxes


def _reject_repeated_ids(boxes: MotBoxes, path: Path) -> None:
    """Raise an InputError when one id appears twice in the same frame, which makes matching ambiguous."""
    pairs = np.stack([boxes.frames, boxes.ids], axis=1)
    unique_pairs, counts = np.unique(pairs, axis=0, return_counts=True)
    if np.any(counts > 1):
        frame, track_id = unique_pairs[np.argmax(counts > 1)]
        raise InputError(f"{path} has id {track_id} more than once in frame {frame}.")
