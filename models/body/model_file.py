"""Reads body model files (.pkl, .npz) into plain numpy arrays, without chumpy and without running foreign code.

The official SMPL pickles are Python-2 pickles whose arrays are `chumpy` objects; chumpy does not import on
Python >= 3.11. The unpickler below resolves only the few globals such files need (numpy and scipy.sparse array
reconstruction, and stand-ins for every `chumpy.*` class, which keep the pickled array `x`) and refuses any other.
"""

from __future__ import annotations

import collections
import importlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from models.structures import InputError


class _PickledState:
    """Stand-in for a pickled object of a known class: keeps its pickled state for conversion after loading."""

    state: Any = None

    def __init__(self, *args: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ChumpyArray(_PickledState):
    """Stand-in for any chumpy class; its value is the array under the pickled state's key 'x'."""


class _SparseMatrix(_PickledState):
    """Stand-in for a scipy.sparse csc/csr matrix, rebuilt from its pickled arrays with the installed scipy."""

    format = "csc"


class _CsrMatrix(_SparseMatrix):
    format = "csr"


def _numpy_multiarray(name: str) -> Any:
    module = "numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray"
    return getattr(importlib.import_module(module), name)


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """Python's copyreg._reconstructor, restricted to plain `object` bases (the only kind SMPL files use)."""
    if base is not object:
        raise pickle.UnpicklingError(f"refused base class {base!r}")
    return cls.__new__(cls)


_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy", "zeros"): lambda: np.zeros,
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_multiarray("_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_multiarray("_reconstruct"),
    ("numpy.core.multiarray", "scalar"): lambda: _numpy_multiarray("scalar"),
    ("numpy._core.multiarray", "scalar"): lambda: _numpy_multiarray("scalar"),
    ("scipy.sparse.csc", "csc_matrix"): lambda: _SparseMatrix,
    ("scipy.sparse._csc", "csc_matrix"): lambda: _SparseMatrix,
    ("scipy.sparse.csr", "csr_matrix"): lambda: _CsrMatrix,
    ("scipy.sparse._csr", "csr_matrix"): lambda: _CsrMatrix,
    ("copy_reg", "_reconstructor"): lambda: _reconstructor,
    ("copyreg", "_reconstructor"): lambda: _reconstructor,
    ("__builtin__", "object"): lambda: object,
    ("builtins", "object"): lambda: object,
    ("__builtin__", "set"): lambda: set,
    ("builtins", "set"): lambda: set,
    ("__builtin__", "frozenset"): lambda: frozenset,
    ("builtins", "frozenset"): lambda: frozenset,
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles call to rebuild `bytes`; only the latin-1 codec is accepted."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of SMPL-style model files; chumpy classes become `_ChumpyArray`."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyArray
        resolve = _ALLOWED_GLOBALS.get((module, name))
        if resolve is None:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return resolve()


def _to_plain(value: Any, key: str, path: Path) -> Any:
    """Replaces stand-ins by numpy arrays / scipy sparse matrices, recursively."""
    if isinstance(value, _ChumpyArray):
        state = value.state if isinstance(value.state, dict) else {}
        if "x" not in state:
            raise InputError(f"Body model file {path}: key '{key}' holds a chumpy object without an array 'x'.")
        return np.asarray(state["x"])
    if isinstance(value, _SparseMatrix):
        state = value.state if isinstance(value.state, dict) else {}
        shape = state.get("_shape", state.get("shape"))
        if shape is None or not {"data", "indices", "indptr"} <= state.keys():
            raise InputError(f"Body model file {path}: key '{key}' holds a sparse matrix without its arrays.")
        build = scipy.sparse.csc_matrix if value.format == "csc" else scipy.sparse.csr_matrix
        return build((state["data"], state["indices"], state["indptr"]), shape=tuple(shape))
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        return value.copy()
    if isinstance(value, dict):
        return {k: _to_plain(v, key, path) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_plain(v, key, path) for v in value)
    return value


def load_pickle(path: Path, label: str = "Body model file") -> dict[str, Any]:
    """The dict stored in an SMPL-style pickle (or any pickled dict of numpy arrays: `label` names the file in
    errors), with chumpy arrays turned into numpy arrays."""
    try:
        with open(path, "rb") as file:
            data = _RestrictedUnpickler(file, encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise InputError(f"{label} {path} is not a plain pickle of arrays ({error}).") from error
    if not isinstance(data, dict):
        raise InputError(f"{label} {path} holds a {type(data).__name__}; expected a dict of arrays.")
    return {key: _to_plain(value, key, path) for key, value in data.items()}


def load_npz(path: Path) -> dict[str, Any]:
    """The numeric arrays of an .npz model file; object arrays (which need pickle) are skipped."""
    arrays = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError:
                continue
    return arrays


def load_model_arrays(path: Path) -> dict[str, Any]:
    """The arrays of a body model file (.pkl or .npz)."""
    if path.suffix == ".pkl":
        return load_pickle(path)
    if path.suffix == ".npz":
        return load_npz(path)
    raise InputError(f"Body model file {path} has suffix '{path.suffix}'; expected .pkl or .npz.")
