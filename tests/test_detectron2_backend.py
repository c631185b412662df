"""detectron2 backend: without detectron2 or without a checkpoint it fails with one clear sentence."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from conftest import CONFIGS
from omegaconf import OmegaConf

from models.detection.detectron2_backend import Detectron2Detector, read_checkpoint
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


class Payload:
    """Pickled, this would create `marker` when loaded (stands for any code)."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoints_are_read_without_running_pickled_code(tmp_path):
    import pickle

    import numpy as np
    import torch

    zoo = {"model": {"w": np.ones(3, np.float32)}, "__author__": "Detectron2 Model Zoo"}
    (tmp_path / "zoo.pkl").write_bytes(pickle.dumps(zoo))
    assert read_checkpoint(tmp_path / "zoo.pkl")["model"]["w"].tolist() == [1, 1, 1]
    caffe2 = {"blobs": {"conv1_w": np.zeros(2), "conv1_w_momentum": np.zeros(2)}}
    (tmp_path / "caffe2.pkl").write_bytes(pickle.dumps(caffe2, protocol=2))
    assert list(read_checkpoint(tmp_path / "caffe2.pkl")["model"]) == ["conv1_w"]
    torch.save({"conv.weight": torch.ones(2)}, tmp_path / "plain.pth")
    assert read_checkpoint(tmp_path / "plain.pth")["model"]["conv.weight"].tolist() == [1, 1]

    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"model": Payload(marker), "__author__": "x"}))
    torch.save({"model": Payload(marker)}, tmp_path / "evil.pth")
    for name in ("evil.pkl", "evil.pth"):
        with pytest.raises(InputError, match=f"detectron2 checkpoint {tmp_path / name} is not a plain"):
            read_checkpoint(tmp_path / name)
    assert not marker.exists()
