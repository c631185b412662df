"""Two runs of the same command give bit-identical tracks and results arrays on CPU (README, "Determinism")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PETS, ROOT, needs_pets

from tracker.io import load_results

pytestmark = pytest.mark.slow  # two runs of tools/track.py in subprocesses


def run_twice(tmp_path: Path, *overrides: str) -> tuple[Path, Path]:
    folders = (tmp_path / "first", tmp_path / "second")
    for folder in folders:
        command = [sys.executable, str(ROOT / "tools" / "track.py"), f"video={PETS}", *overrides]
        result = subprocess.run(
            [*command, f"hydra.run.dir={folder}"], capture_output=True, text=True, cwd=ROOT, timeout=600
        )
        assert result.returncode == 0, result.stderr
    return folders


@needs_pets
def test_default_run_on_cpu_is_bit_identical(tmp_path: Path) -> None:
    first, second = run_twice(tmp_path, "end=20", "render=off", "device=cpu")
    assert (first / "tracks.mot.txt").read_bytes() == (second / "tracks.mot.txt").read_bytes()
    one, two = load_results(first), load_results(second)
    assert one.header == two.header and len(one) == len(two) == 20
    for record, again in zip(one.frames(), two.frames(), strict=True):
        assert record.keys() == again.keys()
        for key, value in record.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == again[key].dtype and value.shape == again[key].shape, key
                assert value.tobytes() == again[key].tobytes(), (record["frame"], key)  # NaNs included
            else:
                assert value == again[key], key
    assert any(len(record["track_ids"]) for record in one.frames())
