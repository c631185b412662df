"""The `blazepose` regressor: BlazePose landmarks for every person of a window, fitted with SMPL-format bodies.

BlazePose reads its own square, edge-padded region around each box, so besides the `PersonBatch` (boxes, frame
indices, frame sizes and the HMR2 crop geometry) `predict` needs the window's frames. Fits are warm-started from
the previous frame: a person whose box overlaps one of the previous frame's (IoU matching, the previous window's
last frame included) starts from that person's fit when it was reliable. People whose landmarks are not
trustworthy (low pose score, few visible joints, large residual, tiny box) are flagged `reliable=False` and get the
template body (rest pose, upright, sized to the box) instead of their fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from models.body import BodyModel
from models.camera import full_frame_focal_length
from models.regressors.base import Regressor
from models.regressors.blazepose.fit import BodyFitter, FitConfig, FitResult
from models.regressors.blazepose.landmarker import BlazePoseLandmarker
from models.regressors.template import TemplateRegressor
from models.structures import (
    DEFAULT_CROP_SPEC,
    BodyParams,
    CropSpec,
    InputError,
    PersonBatch,
    PoseLandmarks,
    iou_matrix,
)


@dataclass
class BlazePoseOutput:
    """Per person: `params` (BodyParams; template bodies where not reliable), the 33 `landmarks`, fit `confidence`
    B in [0, 1], reprojection `error` B (px), `reliable` B bool and `warm` B bool (started from the previous fit)."""

    params: BodyParams
    landmarks: PoseLandmarks
    confidence: torch.Tensor
    error: torch.Tensor
    reliable: torch.Tensor
    warm: torch.Tensor


@dataclass
class _PreviousFrame:
    """The last frame fitted: its boxes, fits and reliability, for warm starts in the next frame."""

    boxes: torch.Tensor
    params: BodyParams
    reliable: torch.Tensor


def match_boxes(current: torch.Tensor, previous: torch.Tensor, min_iou: float) -> torch.Tensor:
    """For each current box, the index of its matched previous box (Hungarian on IoU, at least min_iou) or -1."""
    matches = torch.full((len(current),), -1, dtype=torch.long)
    if len(current) == 0 or len(previous) == 0:
        return matches
    iou = iou_matrix(current.cpu().numpy(), previous.cpu().numpy())
    rows, cols = linear_sum_assignment(-iou)
    for row, col in zip(rows, cols):
        if iou[row, col] >= min_iou:
            matches[row] = int(col)
    return matches


class BlazePoseRegressor(Regressor):
    """Landmarks (BlazePose-full) + body fit (`fit.py`) → BodyParams in the HMR2 regressor's conventions.

    body_model: the pipeline's body model. focal_length: HMR2's crop focal length for a crop of crop_spec.size (the
    full-frame camera is the same as HMR2's). min_box_height: boxes lower than this (px) are flagged unreliable.
    match_iou: least IoU with a box of the previous frame for a warm start. warm_start: False fits everyone cold in
    one batch (faster: warm fits run frame after frame). segmentation: also return each person's mask (BlazePose's
    segmentation, `PoseLandmarks.mask`), which the texture and appearance stages use to ignore the background.
    """

    name = "blazepose"
    needs_pixels = False  # BlazePose cuts its own square regions from the frames
    fits_landmarks = True

    def __init__(
        self,
        body_model: BodyModel,
        model_path: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 8,
        roi_scale: float = 1.25,
        fit: FitConfig | dict | None = None,
        focal_length: float = 5000.0,
        crop_spec: CropSpec = DEFAULT_CROP_SPEC,
        min_box_height: float = 20.0,
        match_iou: float = 0.3,
        warm_start: bool = False,
        segmentation: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.landmarker = BlazePoseLandmarker(model_path, self.device, batch_size, roi_scale, segmentation)
        fit_config = fit if isinstance(fit, FitConfig) else FitConfig(**(fit or {}))
        self.fitter = BodyFitter(body_model.to(self.device), fit_config).to(self.device)
        self.template = TemplateRegressor.from_body_model(body_model, focal_length=focal_length, crop_spec=crop_spec)
        self.focal_length = focal_length
        self.crop_spec = crop_spec
        self.min_box_height = min_box_height
        self.match_iou = match_iou
        self.warm_start = warm_start
        self.previous: _PreviousFrame | None = None

    def reset(self) -> None:
        """Forget the previous frame (call between videos)."""
        self.previous = None

    def state_dict(self) -> dict:
        """The last frame fitted (its boxes, fits and reliability) as arrays, so that a resumed run warm-starts its
        first frame as the uninterrupted run did."""
        if self.previous is None:
            return {"previous": None}
        params = {name: value.cpu().numpy() for name, value in self.previous.params.tensors().items()}
        return {"previous": {"boxes": self.previous.boxes.cpu().numpy(), "params": params,
                             "has_pose": self.previous.params.has_pose,
                             "reliable": self.previous.reliable.cpu().numpy()}}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` returned, on the regressor's device."""
        previous = state["previous"]
        if previous is None:
            self.previous = None
            return
        params = {name: torch.as_tensor(value, device=self.device) for name, value in previous["params"].items()}
        self.previous = _PreviousFrame(
            boxes=torch.as_tensor(previous["boxes"], device=self.device),
            params=BodyParams(**params, has_pose=bool(previous["has_pose"])),
            reliable=torch.as_tensor(previous["reliable"], device=self.device),
        )

    def predict(self, crops: PersonBatch, frames: Sequence[np.ndarray] | torch.Tensor | None = None) -> BodyParams:
        """Fitted bodies with their landmarks, fit errors and reliability flags."""
        out = self.predict_with_landmarks(crops, frames)
        device = out.params.betas.device
        out.params.landmarks = out.landmarks.to(device)
        out.params.fit_error = out.error
        out.params.reliable = out.reliable
        return out.params

    def predict_with_landmarks(
        self, crops: PersonBatch, frames: Sequence[np.ndarray] | torch.Tensor | None = None
    ) -> BlazePoseOutput:
        """Everything the regressor knows per person; frames: the window's H×W×3 uint8 RGB frames that
        crops.frame_ids index (the frames given to make_crops)."""
        if frames is None:
            raise InputError("The blazepose regressor needs the window's frames: call predict(crops, frames).")
        source_device = crops.boxes.device
        boxes = crops.boxes.to(self.device, torch.float32)
        frame_ids = crops.frame_ids.to(self.device).long()
        image_size = crops.image_size.to(self.device, torch.float32)
        if len(boxes) and int(frame_ids.max()) >= len(frames):
            raise InputError(
                f"The blazepose regressor got {len(frames)} frames but crops of frame {int(frame_ids.max())}."
            )
        landmarks = self.landmarker(frames, boxes, frame_ids)
        focal = full_frame_focal_length(image_size, self.focal_length, self.crop_spec.size)
        result, warm = self._fit_window(landmarks, boxes, frame_ids, image_size, focal, len(frames))
        reliable = result.reliable & ((boxes[:, 3] - boxes[:, 1]) >= self.min_box_height)
        params = self._with_template(result.params, reliable, crops)
        params.pred_cam = self._crop_camera(params, crops)
        return BlazePoseOutput(
            params.to(source_device),
            landmarks,
            result.confidence.to(source_device),
            result.error.to(source_device),
            reliable.to(source_device),
            warm.to(source_device),
        )

    def _fit_window(
        self,
        landmarks: PoseLandmarks,
        boxes: torch.Tensor,
        frame_ids: torch.Tensor,
        image_size: torch.Tensor,
        focal: torch.Tensor,
        num_frames: int,
    ) -> tuple[FitResult, torch.Tensor]:
        """Cold fits for everyone without a usable predecessor in the previous frame (one batch), then, frame by
        frame, warm fits for the others from their predecessor's fit. Returns the fits in input order."""
        landmarks = replace(landmarks, mask=None)  # the fits never read the masks: indexing must not copy them
        people = [torch.nonzero(frame_ids == f).flatten() for f in range(num_frames)]
        previous_boxes = self.previous.boxes if self.previous is not None else boxes[:0]
        predecessors = []
        for members in people:
            match = match_boxes(boxes[members], previous_boxes, self.match_iou).to(boxes.device)
            predecessors.append(match if self.warm_start else torch.full_like(match, -1))
            previous_boxes = boxes[members]
        cold = torch.cat([members[match < 0] for members, match in zip(people, predecessors)])
        cold_fit = self.fitter.fit(landmarks.index(cold), boxes[cold], image_size[cold], focal[cold])
        cold_row = torch.full((len(boxes),), -1, dtype=torch.long, device=boxes.device)
        cold_row[cold] = torch.arange(len(cold), device=boxes.device)
        warm = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)

        previous = self.previous
        frame_fits = []
        for members, match in zip(people, predecessors):
            first_seen = torch.nonzero(match < 0).flatten()
            parts = [(first_seen, _index_result(cold_fit, cold_row[members[first_seen]]))]
            matched = torch.nonzero(match >= 0).flatten()
            if len(matched) and previous is not None:
                usable = previous.reliable[match[matched]]
                for chosen, init in ((matched[usable], previous.params.index(match[matched[usable]])),
                                     (matched[~usable], None)):  # fmt: skip
                    if len(chosen):
                        person = members[chosen]
                        fitted = self.fitter.fit(landmarks.index(person), boxes[person], image_size[person],
                                                 focal[person], init)  # fmt: skip
                        parts.append((chosen, fitted))
                        warm[person] = init is not None
            positions = torch.cat([rows for rows, _ in parts])
            fit = _index_result(_cat_results([part for _, part in parts]), torch.argsort(positions))
            frame_fits.append(fit)
            previous = _PreviousFrame(boxes[members], fit.params, fit.reliable)
        if num_frames:
            self.previous = previous
        combined = _cat_results(frame_fits) if frame_fits else cold_fit
        order = torch.cat(people) if people else cold
        return _index_result(combined, torch.argsort(order)), warm

    def _with_template(self, params: BodyParams, reliable: torch.Tensor, crops: PersonBatch) -> BodyParams:
        """params with the template body in place of every unreliable person's fit."""
        unreliable = torch.nonzero(~reliable).flatten()
        if len(unreliable) == 0:
            return params
        template = self.template.predict(crops.index(unreliable.to(crops.boxes.device))).to(self.device)
        merged = {name: value.clone() for name, value in params.tensors().items()}
        for name, value in template.tensors().items():
            merged[name][unreliable] = value
        return BodyParams(**merged, has_pose=True)

    def _crop_camera(self, params: BodyParams, crops: PersonBatch) -> torch.Tensor:
        """The weak-perspective crop camera (s, tx, ty) of the HMR2 crop that gives params.cam_t (inverse of
        models.camera.cam_crop_to_full)."""
        center = crops.center.to(self.device, torch.float32)
        size = crops.size.to(self.device, torch.float32)
        cam_t, focal, image_size = params.cam_t, params.focal_length, params.image_size
        scale = 2 * focal / (size * cam_t[:, 2])
        tx = cam_t[:, 0] - 2 * (center[:, 0] - image_size[:, 0] / 2) / (size * scale)
        ty = cam_t[:, 1] - 2 * (center[:, 1] - image_size[:, 1] / 2) / (size * scale)
        return torch.stack([scale, tx, ty], dim=-1)


def _cat_results(parts: list[FitResult]) -> FitResult:
    return FitResult(
        BodyParams.cat([p.params for p in parts]),
        torch.cat([p.confidence for p in parts]),
        torch.cat([p.error for p in parts]),
        torch.cat([p.reliable for p in parts]),
    )


def _index_result(result: FitResult, index: torch.Tensor) -> FitResult:
    return FitResult(result.params.index(index), result.confidence[index], result.error[index], result.reliable[index])
