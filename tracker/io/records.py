"""The record codec of `results.phx`: plain JSON plus raw little-endian array bytes, so that reading never runs code.

A file is `MAGIC` followed by records. A record is a 4-byte little-endian length, that many bytes of UTF-8 JSON
(`{"kind": ..., "values": {...}, "arrays": [[key, dtype, shape], ...]}`) and then each listed array's bytes in C
order. Only plain numeric, bool and fixed-width string dtypes are accepted (never object arrays), and a numpy
scalar is stored as a 0-d array and read back as a numpy scalar.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

MAGIC = b"PHALANX\n"
_LENGTH = struct.Struct("<I")
# bool, (u)int 8-64 bit, float 16-64 bit, fixed-width byte and unicode strings; all little-endian or byte-sized.
_DTYPE = re.compile(r"\|b1|\|[iu]1|<[iu][248]|<f[248]|\|S[1-9]\d{0,5}|<U[1-9]\d{0,5}")
_MAX_META = 1 << 26  # 64 MiB of JSON is far beyond any honest record (a resolved config is a few kB)


class TruncatedRecord(EOFError):
    """The file ends inside a record: the writer was stopped while writing it."""


def encode(kind: str, record: Mapping[str, Any]) -> bytes:
    """One record's bytes; ValueError for a key or value the format cannot hold faithfully."""
    values: dict[str, Any] = {}
    arrays: list[list] = []
    chunks: list[bytes] = []
    for key, value in record.items():
        if not isinstance(key, str):
            raise ValueError(f"Record key {key!r} must be a string.")
        if isinstance(value, (np.ndarray, np.generic)):
            array = np.asarray(value)
            little = array.dtype.newbyteorder("<")
            if not _DTYPE.fullmatch(little.str):
                raise ValueError(f"Record key {key!r} has dtype {array.dtype}, which results files cannot hold.")
            arrays.append([key, little.str, list(array.shape)])
            chunks.append(np.ascontiguousarray(array, dtype=little).tobytes())
        else:
            values[key] = value
    try:
        meta = json.dumps({"kind": kind, "values": values, "arrays": arrays}, default=_json_scalar).encode()
    except (TypeError, ValueError) as error:
        raise ValueError(f"Record of kind {kind!r} holds a value results files cannot hold: {error}") from None
    return b"".join([_LENGTH.pack(len(meta)), meta, *chunks])


def read_record(handle: BinaryIO) -> tuple[str, dict] | None:
    """The next record as (kind, values and arrays), None at the end of the file.

    Raises TruncatedRecord when the file stops inside the record, ValueError when the bytes are not a record.
    """
    prefix = handle.read(_LENGTH.size)
    if not prefix:
        return None
    if len(prefix) < _LENGTH.size:
        raise TruncatedRecord
    (length,) = _LENGTH.unpack(prefix)
    if length > _MAX_META:
        raise ValueError(f"a record header of {length} bytes")
    meta_bytes = _read_exactly(handle, length)
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("a record header that is not JSON") from None
    if not (
        isinstance(meta, dict)
        and isinstance(meta.get("kind"), str)
        and isinstance(meta.get("values"), dict)
        and isinstance(meta.get("arrays"), list)
    ):
        raise ValueError("a record header without kind, values and arrays")
    record = dict(meta["values"])
    for entry in meta["arrays"]:
        key, dtype, shape = _array_entry(entry)
        size = math.prod(shape) * dtype.itemsize
        array = np.frombuffer(bytearray(_read_exactly(handle, size)), dtype).reshape(shape)
        record[key] = array[()] if array.ndim == 0 else array
    return meta["kind"], record


def _array_entry(entry: Any) -> tuple[str, np.dtype, tuple[int, ...]]:
    """Validate one `[key, dtype, shape]` entry of a record header."""
    if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and isinstance(entry[1], str)):
        raise ValueError("an array entry that is not [key, dtype, shape]")
    key, dtype, shape = entry
    if not _DTYPE.fullmatch(dtype):
        raise ValueError(f"array {key!r} of dtype {dtype!r}, which results files do not hold")
    if not (isinstance(shape, list) and all(type(size) is int and size >= 0 for size in shape)):
        raise ValueError(f"array {key!r} with shape {shape!r}")
    return key, np.dtype(dtype), tuple(shape)


def _read_exactly(handle: BinaryIO, size: int) -> bytes:
    """`size` bytes, or TruncatedRecord when fewer remain (checked first, so a forged size allocates nothing)."""
    remaining = os.fstat(handle.fileno()).st_size - handle.tell()
    if size > remaining:
        raise TruncatedRecord
    data = handle.read(size)
    if len(data) < size:
        raise TruncatedRecord
    return data


def _json_scalar(value: Any) -> Any:
    """numpy scalars nested in lists or dicts (a header's config) as Python numbers."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")
