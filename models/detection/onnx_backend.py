"""Bring-your-own person detector: an ONNX export of a YOLO or DETR-family model, run by onnxruntime.

onnxruntime is an optional extra (`pip install phalanx[onnx]`, or onnxruntime-gpu for CUDA) imported only when this
backend is built. Three output layouts are read, told apart by the model's inputs and outputs:

- `anchors`: YOLOv8 / YOLO11 `yolo export format=onnx`: one image input, one output B×(4+N)×A holding for each of
  A anchor points a box (centre x, centre y, width, height in input pixels) and N class probabilities, no NMS.
- `queries`: RT-DETR exported by Ultralytics: one output B×Q×(4+N), boxes as centre and size relative to the input
  (0..1), class probabilities; Q queries, no NMS needed (NMS is still applied; it removes nothing there).
- `labels_boxes_scores`: the deployment exports of RT-DETR and D-FINE (their `export_onnx.py`): inputs `images` and
  `orig_target_sizes` (B×2, width and height), outputs `labels` (B×Q), `boxes` (B×Q×4, corners in the given size)
  and `scores` (B×Q).

A frame is fitted into the network input either by letterbox (aspect kept, grey 114 padding; what Ultralytics
predicts YOLO with) or by stretching (what RT-DETR and D-FINE predict with); `letterbox: null` takes the layout's
own. Input RGB in 0..1, float32 or float16 as the model declares. A person's score is the largest probability over
`person_classes`; boxes above `score_threshold` go through class-agnostic NMS in torch.
"""
from __future__ import annotations

import ast
import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from models.detection.detector import Detector
from models.detection.nms import batched_nms
from models.structures import Detections, Frame, InputError, ScoreThresholds

INSTALL_SENTENCE = ("detector=onnx needs onnxruntime, which is not installed: pip install 'phalanx[onnx]' "
                    "(or onnxruntime-gpu for CUDA).")
LAYOUTS = ("anchors", "queries", "labels_boxes_scores")
PAD_VALUE = 114
DEFAULT_INPUT_SIZE = 640
DEFAULT_STRIDE = 32
MAX_CANDIDATES = 3000  # highest-scoring boxes per frame that enter NMS
NORMALISED_LIMIT = 1.5  # `queries` boxes are relative to the input: coordinates beyond this are another layout
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def import_onnxruntime() -> Any:
    """The onnxruntime module, or an InputError saying in one sentence how to install it."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        raise InputError(INSTALL_SENTENCE) from None


@dataclass(frozen=True)
class Placement:
    """Where a frame lies in the network input: input pixel = frame pixel × (scale_x, scale_y) + (left, top)."""

    scale_x: float
    scale_y: float
    left: int
    top: int


def letterbox_placement(height: int, width: int, input_size: tuple[int, int]) -> Placement:
    """Aspect kept, centred: the frame scaled to fit `input_size` (height, width), the rest padded evenly."""
    scale = min(input_size[0] / height, input_size[1] / width)
    new_h, new_w = round(height * scale), round(width * scale)
    return Placement(new_w / width, new_h / height, (input_size[1] - new_w) // 2, (input_size[0] - new_h) // 2)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """H×W×3 uint8 -> height×width×3 uint8, bilinear with half-pixel centres and no antialiasing (OpenCV's
    INTER_LINEAR, which Ultralytics predicts with), rounded back to 8 bits."""
    if image.shape[:2] == (height, width):
        return image
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    resized = F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)
    return resized[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def fit_frame(image: np.ndarray, input_size: tuple[int, int], letterbox: bool) -> tuple[np.ndarray, Placement]:
    """The frame (H×W×3 uint8) resized into `input_size`, letterboxed or stretched, and its placement."""
    height, width = image.shape[:2]
    if not letterbox:
        resized = resize_bilinear(image, input_size[0], input_size[1])
        return resized, Placement(input_size[1] / width, input_size[0] / height, 0, 0)
    placement = letterbox_placement(height, width, input_size)
    new_w, new_h = round(width * placement.scale_x), round(height * placement.scale_y)
    resized = resize_bilinear(image, new_h, new_w)
    canvas = np.full((input_size[0], input_size[1], 3), PAD_VALUE, np.uint8)
    canvas[placement.top : placement.top + new_h, placement.left : placement.left + new_w] = resized
    return canvas, placement


def to_frame_pixels(boxes: torch.Tensor, placement: Placement, height: int, width: int) -> torch.Tensor:
    """(N, 4) xyxy boxes in network input pixels -> frame pixels, clipped to the frame."""
    offset = torch.tensor([placement.left, placement.top, placement.left, placement.top], dtype=boxes.dtype)
    scale = torch.tensor([placement.scale_x, placement.scale_y, placement.scale_x, placement.scale_y],
                         dtype=boxes.dtype)
    frame_boxes = (boxes - offset) / scale
    limits = torch.tensor([width, height, width, height], dtype=boxes.dtype)
    return torch.minimum(frame_boxes.clamp(min=0), limits)


def _metadata(session: Any) -> dict[str, Any]:
    """The model's metadata (Ultralytics writes names, imgsz, stride, task), literal values parsed."""
    parsed = {}
    for key, value in session.get_modelmeta().custom_metadata_map.items():
        try:
            parsed[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key] = value
    return parsed


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _describe(values: Sequence[Any]) -> str:
    return ", ".join(f"{value.name} {list(value.shape)}" for value in values)


class OnnxDetector(Detector):
    """People found by a user's ONNX detector (YOLO, RT-DETR or D-FINE export) through onnxruntime."""

    def __init__(
        self,
        path: str,
        thresholds: ScoreThresholds,
        person_classes: Sequence[int] = (0,),
        input_size: int | Sequence[int] | None = None,
        letterbox: bool | None = None,
        device: str = "cpu",
        score_threshold: float = 0.1,
        nms_iou_threshold: float = 0.7,
        max_detections: int = 300,
        batch_size: int = 8,
        threads: int | None = None,
    ) -> None:
        self.thresholds = thresholds
        onnxruntime = import_onnxruntime()
        if not path or not Path(path).is_file():
            raise InputError(f"detector=onnx needs detector.path, the path of an ONNX model file, got {path!r}.")
        if device not in PROVIDERS:
            raise InputError(f"detector.device must be cpu or cuda, got {device!r}.")
        if device == "cuda" and PROVIDERS["cuda"] not in onnxruntime.get_available_providers():
            raise InputError("device=cuda needs the CUDA build of onnxruntime (pip install onnxruntime-gpu), but "
                             f"this one offers only {', '.join(onnxruntime.get_available_providers())}.")
        if not 0.0 <= score_threshold < 1.0:
            raise InputError(f"detector.score_threshold must be in [0, 1), got {score_threshold}.")
        if not 0.0 < nms_iou_threshold <= 1.0:
            raise InputError(f"detector.nms_iou_threshold must be in (0, 1], got {nms_iou_threshold}.")
        if int(batch_size) < 1 or int(max_detections) < 1:
            raise InputError(f"detector.batch_size and detector.max_detections must be positive, got {batch_size} "
                             f"and {max_detections}.")
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        providers = [PROVIDERS[device]] + ([PROVIDERS["cpu"]] if device == "cuda" else [])
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types for unreadable models
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InputError(f"onnxruntime cannot load {path}: {first_line.rstrip('.')}.") from None
        self.name = Path(path).name
        self.metadata = _metadata(self.session)
        self.layout = self._layout()
        self.person_classes = self._checked_classes(person_classes)
        self.input_name = self.session.get_inputs()[0].name
        self.input_dtype = np.float16 if self.session.get_inputs()[0].type == "tensor(float16)" else np.float32
        self.fixed_batch = _static(self.session.get_inputs()[0].shape[0])
        self.input_size, self.fixed_input = self._input_size(input_size)
        self.letterbox = (self.layout == "anchors") if letterbox is None else bool(letterbox)
        self.score_threshold = float(score_threshold)
        self.nms_iou_threshold = float(nms_iou_threshold)
        self.max_detections = int(max_detections)
        self.batch_size = self.fixed_batch or int(batch_size)

    def _layout(self) -> str:
        """Which of LAYOUTS the model's inputs and outputs follow, or an InputError naming what was expected."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        image_ok = len(inputs[0].shape) == 4 and _static(inputs[0].shape[1]) in (None, 3)
        names = {output.name for output in outputs}
        if image_ok and len(inputs) == 2 and {"labels", "boxes", "scores"} <= names:
            return "labels_boxes_scores"
        if image_ok and len(inputs) == 1 and len(outputs) == 1 and len(outputs[0].shape) == 3:
            rows, columns = (_static(dim) for dim in outputs[0].shape[1:])
            classes = self._class_count()
            if rows is not None and columns is not None and rows != columns:
                channels = min(rows, columns)
                if channels >= 5 and (classes is None or channels == 4 + classes):
                    return "anchors" if rows < columns else "queries"
        raise InputError(
            f"{self.name} is not a detector layout phalanx reads: expected one B×3×H×W image input and one "
            "B×(4+N)×A output (YOLOv8/11 `yolo export format=onnx`), one B×Q×(4+N) output (RT-DETR by Ultralytics) "
            "or labels, boxes and scores outputs with an orig_target_sizes input (RT-DETR and D-FINE deployment "
            f"exports), with N the number of class names, but it has inputs {_describe(inputs)} and outputs "
            f"{_describe(outputs)}.")

    def _class_count(self) -> int | None:
        """The number of classes the model names in its metadata, when it does."""
        names = self.metadata.get("names")
        return len(names) if isinstance(names, (dict, list)) else None

    def _checked_classes(self, person_classes: Sequence[int]) -> tuple[int, ...]:
        classes = tuple(int(c) for c in person_classes)
        if not classes:
            raise InputError("detector.person_classes is empty: name the class index (or indices) of a person.")
        count = self._class_count()
        if count is None and self.layout != "labels_boxes_scores":
            output = self.session.get_outputs()[0]
            count = min(_static(output.shape[1]) or 0, _static(output.shape[2]) or 0) - 4
        bad = [c for c in classes if c < 0 or (count is not None and c >= count)]
        if bad:
            names = self.metadata.get("names")
            listed = f" ({', '.join(f'{k} {v}' for k, v in names.items())})" if isinstance(names, dict) else ""
            raise InputError(f"detector.person_classes holds class index {bad[0]}, but {self.name} has {count} "
                             f"classes{listed}.")
        return classes

    def _input_size(self, wanted: int | Sequence[int] | None) -> tuple[tuple[int, int] | int, bool]:
        """The network input (height, width) of a fixed-size model, or for a dynamic one the longer side (int) or
        the (height, width) asked for; and whether the model fixes it."""
        shape = self.session.get_inputs()[0].shape
        fixed = (_static(shape[2]), _static(shape[3]))
        if wanted is not None and not isinstance(wanted, int):
            wanted = tuple(int(side) for side in wanted)
            if len(wanted) != 2 or min(wanted) < 32:
                raise InputError(f"detector.input_size must be a side or [height, width] of at least 32 pixels, "
                                 f"got {list(wanted)}.")
        elif wanted is not None and int(wanted) < 32:
            raise InputError(f"detector.input_size must be at least 32 pixels, got {wanted}.")
        if None not in fixed:
            if wanted is not None and wanted not in (fixed, max(fixed)):
                raise InputError(f"{self.name} has a fixed {fixed[0]}×{fixed[1]} input, so detector.input_size must "
                                 f"be {max(fixed)} or null, not {wanted} (export with dynamic=True for other sizes).")
            return fixed, True
        if wanted is None:
            imgsz = self.metadata.get("imgsz")
            wanted = max(imgsz) if isinstance(imgsz, (list, tuple)) else DEFAULT_INPUT_SIZE
        return wanted, False

    def _network_size(self, height: int, width: int) -> tuple[int, int]:
        """The input (height, width) for frames of this size: fixed, asked for, or for a dynamic model and one
        side: the frame's letterbox rectangle with that longer side, sides rounded up to the model's stride."""
        if self.fixed_input or not isinstance(self.input_size, int):
            return self.input_size
        side = self.input_size
        if not self.letterbox:
            return side, side
        stride = int(self.metadata.get("stride", DEFAULT_STRIDE))
        scale = side / max(height, width)
        return (math.ceil(round(height * scale) / stride) * stride, math.ceil(round(width * scale) / stride) * stride)

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One `Detections` per frame: person boxes xyxy in frame pixels and scores above score_threshold."""
        results = []
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start : start + self.batch_size]
            images = [self._checked_image(frame) for frame in chunk]
            size = self._network_size(*images[0].shape[:2])
            fitted = [fit_frame(image, size, self.letterbox) for image in images]
            outputs = self.run_network(np.stack([image for image, _ in fitted]), size)
            results += [self._decode(output, size, placement, *image.shape[:2])
                        for output, (_, placement), image in zip(outputs, fitted, images)]
        return results

    def run_network(self, batch: np.ndarray, size: tuple[int, int]) -> list[tuple[np.ndarray, ...]]:
        """Raw outputs per image for a B×H×W×3 uint8 batch of fitted frames: the model's output row(s) of it."""
        tensor = np.ascontiguousarray(batch.transpose(0, 3, 1, 2)).astype(self.input_dtype) / self.input_dtype(255)
        if self.fixed_batch is not None and len(tensor) < self.fixed_batch:
            padding = np.zeros((self.fixed_batch - len(tensor),) + tensor.shape[1:], tensor.dtype)
            tensor = np.concatenate([tensor, padding])
        feeds = {self.input_name: tensor}
        if self.layout == "labels_boxes_scores":
            target = np.tile(np.array([[size[1], size[0]]], np.int64), (len(tensor), 1))
            feeds[self.session.get_inputs()[1].name] = target
            labels, boxes, scores = self.session.run(["labels", "boxes", "scores"], feeds)
            return [(labels[i], boxes[i], scores[i]) for i in range(len(batch))]
        (output,) = self.session.run(None, feeds)
        return [(output[i],) for i in range(len(batch))]

    def person_boxes(self, output: tuple[np.ndarray, ...], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One image's raw output -> (boxes xyxy in network input pixels, person scores), before threshold/NMS."""
        if self.layout == "labels_boxes_scores":
            labels, boxes, scores = (torch.from_numpy(np.asarray(value)) for value in output)
            person = torch.isin(labels.long(), torch.tensor(self.person_classes))
            return boxes.float()[person], scores.float()[person]
        raw = torch.from_numpy(np.asarray(output[0], np.float32))
        rows = raw if self.layout == "anchors" else raw.T  # (4 + N) × A
        scores = rows[4 + torch.tensor(self.person_classes)].amax(dim=0)
        cx, cy, w, h = rows[:4]
        if self.layout == "queries":
            if rows[:4].abs().max() > NORMALISED_LIMIT:
                raise InputError(f"{self.name}'s B×Q×(4+N) output holds boxes in pixels, not relative to the input "
                                 "as an RT-DETR export does (a transposed YOLO export is not supported).")
            cx, w = cx * size[1], w * size[1]
            cy, h = cy * size[0], h * size[0]
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1), scores

    def _decode(self, output: tuple[np.ndarray, ...], size: tuple[int, int], placement: Placement, height: int,
                width: int) -> Detections:
        """Person boxes of one image in frame pixels: threshold, the best MAX_CANDIDATES, class-agnostic NMS."""
        boxes, scores = self.person_boxes(output, size)
        keep = scores > self.score_threshold
        boxes, scores = boxes[keep], scores[keep]
        if len(scores) > MAX_CANDIDATES:
            best = torch.topk(scores, MAX_CANDIDATES).indices
            boxes, scores = boxes[best], scores[best]
        boxes = to_frame_pixels(boxes, placement, height, width)
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        order, kept = batched_nms(boxes[None], scores[None], valid[None], self.nms_iou_threshold, self.max_detections)
        chosen = order[0][kept[0]]
        return Detections(boxes[chosen].numpy(), scores[chosen].numpy())

    @staticmethod
    def _checked_image(frame: Frame) -> np.ndarray:
        image = np.asarray(frame.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 1:
            raise InputError(f"Frame {frame.index} must be an H x W x 3 uint8 RGB image, got shape "
                             f"{image.shape} and dtype {image.dtype}.")
        return image
