"""Tracking results streamed to disk while the video runs, and read back frame by frame or track by track.

`results.phx` (format in tracker.io.records) holds a header record (`{"schema": "phalanx.results", "version": 2,
"per_box_keys": [...], **header}`), then one `frame` record per frame as it is finished and a `missing` record for
each frame the source could not decode. Loading it parses JSON and raw arrays and never runs code; a file cut short
by a killed run reads up to its last complete frame. `tracks.mot.txt` holds the same boxes as MOTChallenge rows.
Both are written as `*.partial` and renamed only when the writer closes without error. Version-1 `results.jbl`
files are joblib pickles, which can run code when loaded: `load_results` reads them only with `trust=True`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import joblib
import numpy as np

from models.mot_text import mot_rows
from models.structures import InputError
from tracker.io import records
from tracker.schema import (
    FRAME_KEYS,
    HEADER_KEYS,
    LEGACY_RESULTS_FILE,
    LEGACY_VERSION,
    MOT_FILE,
    PARTIAL_SUFFIX,
    RESULTS_FILE,
    SCHEMA,
    VERSION,
)

log = logging.getLogger(__name__)

# Record kinds of results.phx.
HEADER, FRAME, MISSING = "header", "frame", "missing"


class ResultsWriter:
    """Append one record per frame to `results.phx` and `tracks.mot.txt` in `run_dir`, flushing every frame.

    `mot_states` picks which track states get MOT rows; `per_box_keys` names extra record keys holding one row
    per box (e.g. SMPL parameters), which the per-track view then stacks over time. A failed write (a full disk)
    raises InputError with one sentence and leaves the `*.partial` files as far as they got.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        header: Mapping[str, Any],
        mot_states: Collection[str] = ("confirmed",),
        per_box_keys: Sequence[str] = (),
        resume: Mapping[str, Any] | None = None,
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
        if resume is not None:
            self._reopen(resume)
            return
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._results = open(_partial(self.results_path), "wb")
        except OSError as error:
            raise InputError(f"Output directory {self.run_dir} is not writable ({error.strerror}).") from None
        self._mot = open(_partial(self.mot_path), "w", encoding="utf-8")
        header = {"schema": SCHEMA, "version": VERSION, "per_box_keys": list(self._per_box_keys), **header}
        encoded = records.MAGIC + records.encode(HEADER, header)
        with self._writing():
            self._results.write(encoded)
            self._results.flush()

    def state_dict(self) -> dict:
        """How far both files are final (bytes written, last frame), for a checkpoint."""
        return {"results_bytes": self._results.tell(), "mot_bytes": self._mot.tell(), "last_frame": self._last_frame}

    def _reopen(self, state: Mapping[str, Any]) -> None:
        """Continue the `*.partial` files of a stopped run: cut them back to what `state` says was final (a
        killed run may have written past its last checkpoint) and append from there."""
        try:
            for path, size in ((self.results_path, state["results_bytes"]), (self.mot_path, state["mot_bytes"])):
                os.truncate(_partial(path), int(size))
            self._results = open(_partial(self.results_path), "ab")
            self._mot = open(_partial(self.mot_path), "a", encoding="utf-8")
        except OSError as error:
            raise InputError(f"Cannot continue the results in {self.run_dir} ({error.strerror}).") from None
        self._last_frame = int(state["last_frame"])

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
        encoded = records.encode(FRAME, record)
        with self._writing():
            self._results.write(encoded)
            self._mot.writelines(_mot_rows(record, self._mot_states))
            self._results.flush()
            self._mot.flush()

    def write_missing(self, frame: int) -> None:
        """Record that the source could not decode `frame` (the run skipped it)."""
        if self._closed:
            raise ValueError("ResultsWriter is closed.")
        encoded = records.encode(MISSING, {"frame": int(frame)})
        with self._writing():
            self._results.write(encoded)
            self._results.flush()

    def close(self) -> None:
        """Finish both files and give them their final names."""
        if self._closed:
            return
        with self._writing():
            for handle in (self._results, self._mot):
                handle.flush()
                os.fsync(handle.fileno())
            self._close_files()
            os.replace(_partial(self.results_path), self.results_path)
            os.replace(_partial(self.mot_path), self.mot_path)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn a failed write into one sentence (InputError), closing the files as far as they got."""
        try:
            yield
        except OSError as error:
            self._close_files()
            raise InputError(_write_failure(self.run_dir, error)) from None

    def _close_files(self) -> None:
        """Close both files; after a failed write their buffers may not flush, which changes nothing then."""
        self._closed = True
        for handle in (self._results, self._mot):
            with contextlib.suppress(OSError):
                handle.close()


class Results:
    """A results file read lazily: the header, the per-frame records streamed from disk, and per-track views.

    `missing_frames` lists the frames the source could not decode; `complete` is False when the file ended inside a
    record (a killed run), in which case the frames before it are all there is.
    """

    def __init__(
        self,
        path: Path,
        header: dict,
        offsets: list[int],
        track_frames: dict[int, list[int]],
        read_frame: Callable[[BinaryIO], dict],
        missing_frames: Sequence[int] = (),
        complete: bool = True,
    ) -> None:
        self.path = path
        self.header = header
        self.missing_frames = sorted(set(missing_frames))
        self.complete = complete
        self._offsets = offsets
        self._track_frames = track_frames
        self._read_frame = read_frame

    def __len__(self) -> int:
        return len(self._offsets)

    def frames(self) -> Iterator[dict]:
        """Yield the per-frame records in order, one at a time from disk."""
        with open(self.path, "rb") as handle:
            for offset in self._offsets:
                handle.seek(offset)
                yield self._read_frame(handle)

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
                record = self._read_frame(handle)
                row = int(np.flatnonzero(record["track_ids"] == track_id)[0])
                rows["frames"].append(record["frame"])
                rows["times"].append(record["time"])
                for key in per_box_keys:
                    rows[key].append(record[key][row])
        stacked = {"frames": np.asarray(rows.pop("frames"), dtype=np.int64)}
        stacked["times"] = np.asarray(rows.pop("times"), dtype=np.float64)
        stacked.update({key: np.stack(values) for key, values in rows.items()})
        return stacked


def load_results(path: str | os.PathLike, trust: bool = False) -> Results:
    """Open a run folder's results (or the file itself), reading it once to index its frames and tracks.

    A folder's `results.phx` is read, else its `results.phx.partial` (a run still going, or killed), else a
    version-1 `results.jbl`. Version-1 files are pickles that can run any code they hold: only `trust=True` reads them.
    """
    file = _results_file(Path(path))
    with open(file, "rb") as handle:
        if handle.read(len(records.MAGIC)) == records.MAGIC:
            return _load_records(file, handle)
        handle.seek(0)
        pickled = handle.read(1) == b"\x80" or Path(LEGACY_RESULTS_FILE).suffix in file.suffixes
    if not pickled:
        raise InputError(f"File {file} is not a {SCHEMA} file (it does not start with {records.MAGIC!r}).")
    if not trust:
        raise InputError(
            f"Results file {file} is a version-{LEGACY_VERSION} joblib pickle, which can run any code it contains "
            "when opened, so it is read only with load_results(path, trust=True) or the --trust option of "
            "tools/render.py and tools/export.py, for files from a source you trust."
        )
    return _load_joblib(file)


def _results_file(path: Path) -> Path:
    """The results file a path names: the file itself, or the one a run folder holds."""
    if path.is_dir():
        for name in (RESULTS_FILE, RESULTS_FILE + PARTIAL_SUFFIX, LEGACY_RESULTS_FILE):
            if (path / name).is_file():
                return path / name
        path = path / RESULTS_FILE
    if not path.is_file():
        raise InputError(f"Results file {path} does not exist.")
    return path


def _load_records(file: Path, handle: BinaryIO) -> Results:
    """Index a `results.phx` stream whose magic has just been read from `handle`."""
    offsets: list[int] = []
    track_frames: dict[int, list[int]] = {}
    missing: list[int] = []
    kind, header = _next_record(handle, file, truncated=f"Results file {file} ends before its header.") or ("", {})
    if kind != HEADER or header.get("schema") != SCHEMA or header.get("version") != VERSION:
        raise InputError(f"File {file} is not a {SCHEMA} file of version {VERSION}.")
    per_box_keys = header.get("per_box_keys")
    if not (isinstance(per_box_keys, list) and all(isinstance(key, str) for key in per_box_keys)):
        raise InputError(f"Results file {file} is damaged: its header lists no per_box_keys.")
    complete = True
    last_frame = 0
    while True:
        offset = handle.tell()
        try:
            item = _next_record(handle, file)
        except records.TruncatedRecord:
            complete = False
            log.warning("Results file %s ends inside a record (a killed run or full disk): read %d complete frames.",
                        file, len(offsets))
            break
        if item is None:
            break
        kind, record = item
        if kind == FRAME:
            try:
                last_frame = _stored_frame(record, per_box_keys, last_frame)
            except ValueError as error:
                raise InputError(f"Results file {file} is damaged at byte {offset}: {error}") from None
            offsets.append(offset)
            for track_id in record["track_ids"].tolist():
                track_frames.setdefault(track_id, []).append(len(offsets) - 1)
        elif kind == MISSING:
            if type(record.get("frame")) is not int:
                raise InputError(f"Results file {file} is damaged at byte {offset}: a missing frame without a number.")
            missing.append(record["frame"])
    return Results(file, header, offsets, track_frames, lambda handle: _read_frame(handle, file), missing, complete)


def _next_record(handle: BinaryIO, file: Path, truncated: str | None = None) -> tuple[str, dict] | None:
    """The next record of a `results.phx` stream; InputError if it is malformed (or, given `truncated`, cut short)."""
    offset = handle.tell()
    try:
        return records.read_record(handle)
    except records.TruncatedRecord:
        if truncated is None:
            raise
        raise InputError(truncated) from None
    except ValueError as error:
        raise InputError(f"Results file {file} is damaged at byte {offset}: {error}.") from None


def _read_frame(handle: BinaryIO, file: Path) -> dict:
    """The frame record at the handle's position (indexed before, so anything else means the file changed)."""
    item = _next_record(handle, file, truncated=f"Results file {file} changed since it was opened.")
    if item is None or item[0] != FRAME:
        raise InputError(f"Results file {file} changed since it was opened.")
    return item[1]


def _stored_frame(record: dict, per_box_keys: Sequence[str], last_frame: int) -> int:
    """Check a frame record read back as the writer stores them (ValueError if not); returns its frame number."""
    canonical = _validated(record, per_box_keys, last_frame)
    for key in ("track_ids", "boxes", "scores", "states"):
        if not isinstance(record[key], np.ndarray) or record[key].dtype.kind != canonical[key].dtype.kind:
            raise ValueError(f"Frame {canonical['frame']}: {key} is not stored as an array of its kind.")
    return canonical["frame"]


def _load_joblib(file: Path) -> Results:
    """Index a version-1 stream of joblib records (pickles: only for files the caller trusts)."""
    offsets: list[int] = []
    track_frames: dict[int, list[int]] = {}
    with open(file, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        header = _load_pickle(handle, file)
        if not isinstance(header, dict) or header.get("schema") != SCHEMA or header.get("version") != LEGACY_VERSION:
            raise InputError(f"File {file} is not a {SCHEMA} file of version {LEGACY_VERSION}.")
        while handle.tell() < size:
            offsets.append(handle.tell())
            record = _load_pickle(handle, file)
            for track_id in record["track_ids"].tolist():
                track_frames.setdefault(track_id, []).append(len(offsets) - 1)
    return Results(file, header, offsets, track_frames, lambda handle: _load_pickle(handle, file))


def _load_pickle(handle: BinaryIO, file: Path) -> Any:
    try:
        return joblib.load(handle)
    except Exception:  # a truncated or foreign file can fail inside pickle in many ways
        raise InputError(f"Results file {file} is truncated or not a joblib record stream.") from None


def _write_failure(run_dir: Path, error: OSError) -> str:
    """One sentence for a failed write of the run's files."""
    if error.errno == errno.ENOSPC:
        return f"The disk holding {run_dir} is full: free some space and run again (frames so far are in *.partial)."
    return f"Writing the results in {run_dir} failed ({error.strerror or error})."


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
