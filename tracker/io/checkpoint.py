"""A run's resumable state on disk: a nested state dict (plain values and numpy arrays, as the `state_dict()`
methods return) in one record of the safe record codec (tracker.io.records), written atomically."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tracker.io.records import encode, read_record

KIND = "checkpoint"
_ARRAY = "__array__"


def save_checkpoint(path: Path, state: dict) -> None:
    """Writes `state` to `path` atomically (a temporary file renamed over it), so a kill leaves the old or the new."""
    arrays: dict[str, np.ndarray] = {}
    record = {"state": _skeleton(state, arrays), **arrays}
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(encode(KIND, record))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_checkpoint(path: Path) -> dict:
    """The state `save_checkpoint` wrote; ValueError when the file is not a checkpoint."""
    with open(path, "rb") as handle:
        found = read_record(handle)
    if found is None or found[0] != KIND or "state" not in found[1]:
        raise ValueError(f"{path} is not a checkpoint.")
    record = found[1]
    return _restore(record["state"], record)


def _skeleton(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """`value` with each array replaced by a reference to its entry in `arrays`."""
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {_ARRAY: key}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("Checkpoint state dicts need string keys.")
        return {k: _skeleton(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_skeleton(v, arrays) for v in value]
    return value


def _restore(value: Any, arrays: dict[str, Any]) -> Any:
    """Inverse of `_skeleton` (arrays come back writable copies)."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return np.array(arrays[value[_ARRAY]])
        return {k: _restore(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, arrays) for v in value]
    return value
