"""detectron2 backend: without detectron2 or without a checkpoint it fails with one clear sentence."""
from __future__ import annotations

import sys
import types

import pytest
from conftest import CONFIGS
from omegaconf import OmegaConf

from models.detection.detectron2_backend import Detectron2Detector
from models.structures import InputError, ScoreThresholds

THRESHOLDS = ScoreThresholds(high=0.5, low=0.3, new_track=0.5)

CONFIG = CONFIGS / "detector" / "detectron2.yaml"


def test_missing_detectron2_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2", None)  # makes `import detectron2` fail like an absent package
    with pytest.raises(InputError) as error:
        Detectron2Detector(config="any.yaml", checkpoint="model.pkl", thresholds=THRESHOLDS)
    message = str(error.value)
    assert "pip install" in message and "detectron2" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence


def test_missing_checkpoint_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "detectron2", types.ModuleType("detectron2"))
    for checkpoint in (None, str(tmp_path / "absent.pkl")):
        with pytest.raises(InputError, match="detector.checkpoint"):
            Detectron2Detector(config="any.yaml", checkpoint=checkpoint, thresholds=THRESHOLDS)


def test_yaml_config_targets_the_backend():
    config = OmegaConf.load(CONFIG)
    assert config._target_ == "models.detection.detectron2_backend.Detectron2Detector"
    assert config.checkpoint is None and config.person_class == 0
