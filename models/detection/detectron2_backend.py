"""Optional detectron2 person detector (ViTDet or Mask R-CNN, as PHALP uses), built through detectron2's own configs.

detectron2 is not on PyPI and is never a phalanx dependency: this backend imports it only when constructed, and
the user supplies both the model config (a LazyConfig .py such as ViTDet's, a yacs .yaml, or a model-zoo name
like "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml") and the checkpoint file.
"""
from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from models.body.model_file import load_pickle
from models.detection.detector import Detector
from models.structures import Detections, Frame, InputError, ScoreThresholds

INSTALL_SENTENCE = (
    "detector=detectron2 needs detectron2, which is not on PyPI: install it with "
    "`pip install 'git+https://github.com/facebookresearch/detectron2.git'` (after torch), or use detector=ssdlite."
)


def import_detectron2():
    """The detectron2 package, or an InputError saying in one sentence how to install it."""
    try:
        return importlib.import_module("detectron2")
    except ImportError:
        raise InputError(INSTALL_SENTENCE) from None


def read_checkpoint(path: Path) -> dict:
    """A detectron2 checkpoint as `DetectionCheckpointer._load_file` returns it, read without running pickled code:
    model-zoo `.pkl` files (dicts of numpy arrays) through a numpy-only unpickler, others with
    `torch.load(weights_only=True)`."""
    if path.suffix == ".pkl":
        data = load_pickle(path, "detectron2 checkpoint")
        if "model" in data and "__author__" in data:
            return data
        blobs = data.get("blobs", data)  # a Caffe2 / Detectron1 model-zoo file
        model = {key: value for key, value in blobs.items() if not key.endswith("_momentum")}
        return {"model": model, "__author__": "Caffe2", "matching_heuristics": True}
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0].rstrip(".")
        raise InputError(f"detectron2 checkpoint {path} is not a plain file of tensors ({reason}).") from None
    if not isinstance(loaded, dict):
        raise InputError(f"detectron2 checkpoint {path} holds a {type(loaded).__name__}; expected a dict of tensors.")
    return loaded if "model" in loaded else {"model": loaded}


class Detectron2Detector(Detector):
    """Person boxes, scores and instance masks from a detectron2 model (COCO class `person_class`)."""

    def __init__(self, config: str, checkpoint: str | None, thresholds: ScoreThresholds, device: str = "cpu",
                 score_threshold: float = 0.5, batch_size: int = 4, person_class: int = 0) -> None:
        self.thresholds = thresholds
        import_detectron2()
        if not checkpoint or not Path(checkpoint).is_file():
            raise InputError(f"detector.checkpoint must be the path of a detectron2 model file, got {checkpoint!r}.")
        from detectron2.checkpoint import DetectionCheckpointer

        self.device = torch.device(device)
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)
        self.person_class = int(person_class)
        self.model, self.augmentation, self.image_format = self._build(config, device)
        checkpointer = DetectionCheckpointer(self.model)
        checkpointer._load_file = lambda filename: read_checkpoint(Path(filename))  # detectron2's own unpickles code
        checkpointer.load(checkpoint)
        self.model.eval()

    @staticmethod
    def _build(config: str, device: str):
        """(model, test-time resize, input channel order) from a LazyConfig .py or a yacs .yaml config."""
        from detectron2 import model_zoo
        from detectron2.data import transforms

        path = Path(config)
        if not path.is_file():
            try:
                path = Path(model_zoo.get_config_file(config))
            except RuntimeError:
                raise InputError(f"detector.config {config!r} is neither a file nor a detectron2 model-zoo config.")
        if path.suffix == ".py":
            from detectron2.config import LazyConfig, instantiate

            cfg = LazyConfig.load(str(path))
            model = instantiate(cfg.model).to(device)
            mapper = cfg.dataloader.test.mapper
            return model, transforms.AugmentationList(instantiate(mapper.augmentations)), mapper.image_format
        from detectron2.config import get_cfg
        from detectron2.modeling import build_model

        cfg = get_cfg()
        cfg.merge_from_file(str(path))
        cfg.MODEL.DEVICE = device
        resize = transforms.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        return build_model(cfg), transforms.AugmentationList([resize]), cfg.INPUT.FORMAT

    def _model_input(self, image: np.ndarray) -> dict:
        from detectron2.data import transforms

        image = image[:, :, ::-1] if self.image_format == "BGR" else image
        resized = transforms.AugInput(np.ascontiguousarray(image))
        self.augmentation(resized)
        tensor = torch.as_tensor(resized.image.transpose(2, 0, 1).astype(np.float32), device=self.device)
        return {"image": tensor, "height": image.shape[0], "width": image.shape[1]}

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One `Detections` per frame: person boxes xyxy in frame pixels, scores, and masks when the model has them."""
        results = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                inputs = [self._model_input(frame.image) for frame in frames[start : start + self.batch_size]]
                for output in self.model(inputs):
                    instances = output["instances"].to("cpu")
                    keep = (instances.pred_classes == self.person_class) & (instances.scores > self.score_threshold)
                    instances = instances[keep]
                    masks = instances.pred_masks.numpy().astype(bool) if instances.has("pred_masks") else None
                    results.append(Detections(instances.pred_boxes.tensor.numpy(), instances.scores.numpy(), masks))
        return results
