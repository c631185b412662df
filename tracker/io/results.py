"""Tracking results streamed to disk while the video runs, and read back frame by frame or track by track.

`results.jbl` is a sequence of joblib records appended to one binary file: a header record
(`{"schema": "phalanx.results", "version": 1, "per_box_keys": [...], **header}`), then one record per frame.
Read it back with repeated `joblib.load(handle)` on a single `open(path, "rb")` handle (a buffered reader:
joblib peeks at the next bytes without moving past the record). `tracks.mot.txt` holds the same boxes as
MOTChallenge rows. Both are written as `*.partial` and renamed only when the writer closes without error.
Results files are pickles: load only files you trust.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from models.mot_text import mot_rows
from models.structures import InputError
from tracker.schema import FRAME_KEYS, HEADER_KEYS, MOT_FILE, PARTIAL_SUFFIX, RESULTS_FILE, SCHEMA, VERSION


class ResultsWriter:
    """Append one record per frame to `results.jbl` and `tracks.mot.txt` in `run_dir`, flushing every frame.

    `mot_states` picks which track states get MOT rows; `per_box_keys` names extra record keys holding one row
    per box (e.g. SMPL parameters), which the per-track view then stacks over time.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        header: Mapping[str, Any],
        mot_states: Collection[str] = ("confirmed",),
        per_box_keys: Sequence[str] = (),
    ) -> None:
        reserved = [key for key in HEADER_KEYS if key in header]
        if reserved:
            raise ValueError(f"Results header must not set the reserved keys {reserved}.")
        clashing = [key for key in per_box_keys if key in FRAME_KEYS]
        if clashing:
            raise ValueError(f"Per-box keys {clashing} clash with the required record keys.")
        self.run_dir = Path(run_dir)
        self.results_path = self.run_dir / RESULTS_FILE
        self.mot_path = self.run_dir / MOT_FILE
        self._mot_states = frozenset(mot_states)
        self._per_box_keys = tuple(per_box_keys)
        self._last_frame = 0
        self._closed = False
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._results = open(_partial(self.results_path), "wb")
        except OSError as error:
            raise InputError(f"Output directory {self.run_dir} is not writable ({error.strerror}).") from None
        self._mot = open(_partial(self.mot_path), "w", encoding="utf-8")
        joblib.dump(
            {"schema": SCHEMA, "version": VERSION, "per_box_keys": list(self._per_box_keys), **header}, self._results
        )
        self._results.flush()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self.close()
        else:
            self._close_files()

    def write_frame(self, record: Mapping[str, Any]) -> None:
        """Validate one frame's record, append it to both files and flush them."""
        if self._closed:
            raise ValueError("ResultsWriter is closed.")
        record = _validated(record, self._per_box_keys, self._last_frame)
        self._last_frame = record["frame"]
        joblib.dump(record, self._results)
        self._mot.writelines(_mot_rows(record, self._mot_states))
        self._results.flush()
        self._mot.flush()

    def close(self) -> None:
        """Finish both files and give them their final names."""
        if self._closed:
            return
        for handle in (self._results, self._mot):
            handle.flush()
            os.fsync(handle.fileno())
        self._close_files()
        os.replace(_partial(self.results_path), self.results_path)
        os.replace(_partial(self.mot_path), self.mot_path)

    def _close_files(self) -> None:
        self._closed = True
        self._results.close()
        self._mot.close()


class Results:
    """A results file read lazily: the header, the per-frame records streamed from disk, and per-track views."""

    def __init__(self, path: Path, header: dict, offsets: list[int], track_frames: dict[int, list[int]]) -> None:
        self.path = path
        self.header = header
        self._offsets = offsets
        self._track_frames = track_frames

    def __len__(self) -> int:
        return len(self._offsets)

    def frames(self) -> Iterator[dict]:
        """Yield the per-frame records in order, one at a time from disk."""
        if not self._offsets:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self._offsets[0])
            for _ in self._offsets:
                yield joblib.load(handle)

    def track_ids(self) -> list[int]:
        """All track ids that appear in any frame, sorted."""
        return sorted(self._track_frames)

    def track(self, track_id: int) -> dict[str, np.ndarray]:
        """One track over time: `frames`, `times`, `boxes`, `scores`, `states` and the per-box keys, stacked."""
        if track_id not in self._track_frames:
            raise KeyError(f"Track {track_id} does not appear in {self.path}.")
        per_box_keys = ("boxes", "scores", "states", *self.header["per_box_keys"])
        rows: dict[str, list] = {key: [] for key in ("frames", "times", *per_box_keys)}
        with open(self.path, "rb") as handle:
            for position in self._track_frames[track_id]:
                handle.seek(self._offsets[position])
                record = joblib.load(handle)
                row = int(np.flatnonzero(record["track_ids"] == track_id)[0])
                rows["frames"].append(record["frame"])
                rows["times"].append(record["time"])
                for key in per_box_keys:
                    rows[key].append(record[key][row])
        stacked = {"frames": np.asarray(rows.pop("frames"), dtype=np.int64)}
        stacked["times"] = np.asarray(rows.pop("times"), dtype=np.float64)
        stacked.update({key: np.stack(values) for key, values in rows.items()})
        return stacked


def load_results(path: str | os.PathLike) -> Results:
    """Open a run folder's `results.jbl` (or the file itself), reading it once to index its frames and tracks."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"Results file {file} does not exist.")
    offsets: list[int] = []
    track_frames: dict[int, list[int]] = {}
    with open(file, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        header = _load_record(handle, file)
        if not isinstance(header, dict) or header.get("schema") != SCHEMA or header.get("version") != VERSION:
            raise InputError(f"File {file} is not a {SCHEMA} file of version {VERSION}.")
        while handle.tell() < size:
            offsets.append(handle.tell())
            record = _load_record(handle, file)
            for track_id in record["track_ids"].tolist():
                track_frames.setdefault(track_id, []).append(len(offsets) - 1)
    return Results(file, header, offsets, track_frames)


def _load_record(handle, file: Path) -> Any:
    try:
        return joblib.load(handle)
    except Exception:  # a truncated or foreign file can fail inside pickle in many ways
        raise InputError(f"Results file {file} is truncated or not a joblib record stream.") from None


def _partial(path: Path) -> Path:
    return path.with_name(path.name + PARTIAL_SUFFIX)


def _validated(record: Mapping[str, Any], per_box_keys: Sequence[str], last_frame: int) -> dict:
    """Check a frame record (ValueError on a programmer error) and return it with the box arrays in canonical dtypes."""
    missing = [key for key in (*FRAME_KEYS, *per_box_keys) if key not in record]
    if missing:
        raise ValueError(f"Frame record lacks the keys {missing}.")
    frame = record["frame"]
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or frame <= last_frame:
        raise ValueError(f"Frame number must be an integer after {last_frame}, got {frame!r}.")
    time = record["time"]
    if isinstance(time, bool) or not isinstance(time, (int, float, np.number)) or not math.isfinite(time):
        raise ValueError(f"Frame {frame}: time must be a finite number of seconds, got {time!r}.")
    track_ids = np.asarray(record["track_ids"])
    if track_ids.ndim != 1 or not (track_ids.dtype.kind in "iu" or track_ids.size == 0):
        raise ValueError(f"Frame {frame}: track_ids must be a 1-D integer array, got shape {track_ids.shape}.")
    if len(np.unique(track_ids)) != len(track_ids):
        raise ValueError(f"Frame {frame}: track_ids repeat an id.")
    count = len(track_ids)
    canonical = {
        "frame": int(frame),
        "time": float(time),
        "track_ids": track_ids.astype(np.int64),
        "boxes": np.asarray(record["boxes"], dtype=np.float32),
        "scores": np.asarray(record["scores"], dtype=np.float32),
        "states": np.asarray(record["states"], dtype=str),
    }
    expected_shapes = {"boxes": (count, 4), "scores": (count,), "states": (count,)}
    for key, shape in expected_shapes.items():
        if canonical[key].shape != shape:
            raise ValueError(f"Frame {frame}: {key} must have shape {shape}, got {canonical[key].shape}.")
    for key in per_box_keys:
        value = record[key]
        if not isinstance(value, np.ndarray) or value.ndim == 0 or len(value) != count:
            raise ValueError(f"Frame {frame}: per-box key {key} must be an array with {count} rows.")
    return {**record, **canonical}


def _mot_rows(record: dict, states: frozenset[str]) -> list[str]:
    """MOTChallenge rows of the boxes whose state is in `states`."""
    shown = np.isin(record["states"], list(states))
    return mot_rows(record["frame"], record["track_ids"][shown], record["boxes"][shown], record["scores"][shown])
