"""Paths and skips shared by the test files: the repository, the configs, and the real data beside it
(`../shared/data`), whose tests skip with a clear reason when it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
FIXTURES = ROOT / "tests" / "fixtures"
DATA = ROOT.parent / "shared" / "data"
PETS = DATA / "PETS09-S2L1"
PETS_VIDEO = PETS / "vtest.avi"
MOT17 = DATA / "MOT17-dev"
TUD = DATA / "TUD"

needs_pets = pytest.mark.skipif(not (PETS / "gt" / "gt.txt").is_file(), reason=f"shared PETS09-S2L1 not at {PETS}")
needs_pets_video = pytest.mark.skipif(not PETS_VIDEO.is_file(), reason=f"shared PETS09-S2L1 video not at {PETS_VIDEO}")
needs_mot17 = pytest.mark.skipif(not MOT17.is_dir(), reason=f"shared MOT17-dev sequences not found at {MOT17}")
needs_tud = pytest.mark.skipif(
    not (TUD / "expected_metrics.json").is_file(), reason=f"shared TUD reference data not found at {TUD}"
)
