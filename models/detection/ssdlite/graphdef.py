"""A minimal reader for TensorFlow frozen graphs (GraphDef protobuf), written against the wire format.

Only the fields the SSDLite loader needs are decoded (node name/op/inputs/attrs, constant tensors), so reading the
graph needs neither TensorFlow nor the protobuf package.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5

# TensorFlow DataType enum values -> numpy dtypes (types.proto).
_NUMPY_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 6: np.int8, 9: np.int64, 10: np.bool_}


@dataclass
class GraphNode:
    """One node of the graph: its name, op type, input names and decoded attributes."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, object] = field(default_factory=dict)


def _read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) for every field of one message; value is int or memoryview."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LENGTH:
            size, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == _FIXED32:
            value, pos = data[pos : pos + 4], pos + 4
        elif wire == _FIXED64:
            value, pos = data[pos : pos + 8], pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(value, wire: int) -> list[int]:
    if wire == _VARINT:
        return [_signed64(value)]
    out, pos = [], 0
    while pos < len(value):
        item, pos = _read_varint(value, pos)
        out.append(_signed64(item))
    return out


def _floats(value, dtype: str) -> list[float]:
    """A packed run (length-delimited) or a single fixed-width float: both are raw little-endian bytes."""
    return np.frombuffer(value, dtype=dtype).tolist()


def _shape(data: memoryview) -> list[int]:
    dims = []
    for number, _, value in _fields(data):
        if number == 2:
            size = 0
            for dim_number, _, dim_value in _fields(value):
                if dim_number == 1:
                    size = _signed64(dim_value)
            dims.append(size)
    return dims


def _tensor(data: memoryview) -> np.ndarray:
    """Decode a TensorProto into a numpy array (from tensor_content or the typed *_val fields)."""
    dtype_enum, shape, content, values = 1, [], None, []
    for number, wire, value in _fields(data):
        if number == 1:
            dtype_enum = value
        elif number == 2:
            shape = _shape(value)
        elif number == 4:
            content = bytes(value)
        elif number == 5:
            values += _floats(value, "<f4")
        elif number == 6:
            values += _floats(value, "<f8")
        elif number in (7, 10, 11):
            values += _packed_varints(value, wire)
        elif number == 8:
            values.append(bytes(value))
    if dtype_enum == 7:
        return np.array(values, dtype=object).reshape(shape)
    if dtype_enum not in _NUMPY_DTYPES:
        raise ValueError(f"unsupported tensor dtype enum {dtype_enum}")
    dtype = np.dtype(_NUMPY_DTYPES[dtype_enum])
    if content is not None:
        return np.frombuffer(content, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    count = int(np.prod(shape)) if shape else 1
    array = np.array(values, dtype=dtype)
    if len(array) < count:  # TensorProto stores a repeated trailing value once (none: all zeros)
        fill = array[-1] if len(array) else 0
        array = np.concatenate([array, np.full(count - len(array), fill, dtype=dtype)])
    return array.reshape(shape)


def _attr_list(data: memoryview) -> list:
    items: list = []
    for number, wire, value in _fields(data):
        if number == 2:
            items.append(bytes(value).decode())
        elif number in (3, 5, 6):
            items += _packed_varints(value, wire)
        elif number == 4:
            items += _floats(value, "<f4")
        elif number == 7:
            items.append(_shape(value))
        elif number == 8:
            items.append(_tensor(value))
    return items


def _attr_value(data: memoryview) -> object:
    for number, wire, value in _fields(data):
        if number == 1:
            return _attr_list(value)
        if number == 2:
            return bytes(value).decode(errors="replace")
        if number in (3, 6):
            return _signed64(value)
        if number == 4:
            return float(np.frombuffer(value, "<f4")[0])
        if number == 5:
            return bool(value)
        if number == 7:
            return _shape(value)
        if number == 8:
            return _tensor(value)
    return None


def _node(data: memoryview) -> GraphNode:
    node = GraphNode(name="", op="")
    for number, _, value in _fields(data):
        if number == 1:
            node.name = bytes(value).decode()
        elif number == 2:
            node.op = bytes(value).decode()
        elif number == 3:
            node.inputs.append(bytes(value).decode())
        elif number == 5:
            key, attr = "", None
            for entry_number, _, entry_value in _fields(value):
                if entry_number == 1:
                    key = bytes(entry_value).decode()
                elif entry_number == 2:
                    attr = _attr_value(entry_value)
            node.attrs[key] = attr
    return node


def read_graph(path: Path) -> dict[str, GraphNode]:
    """All top-level nodes of a frozen GraphDef file, by name (function libraries are not read)."""
    data = memoryview(Path(path).read_bytes())
    return {node.name: node for node in (_node(value) for number, _, value in _fields(data) if number == 1)}
