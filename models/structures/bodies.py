"""Bodies of a window's people: the batched tensors the model stages share, and the numpy rows the tracker keeps."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from models.structures.body_params import BodyParams
from models.structures.crops import PersonBatch


@dataclass
class BodyArrays:
    """Body results of N people as numpy arrays, one row each; the field names are the results' per-box keys.

    SMPL rotations are matrices in the camera frame (x right, y down, z forward); `cam_t` (metres) and
    `focal_length` (pixels) place the body in the full-frame camera; joints are the 24 SMPL joints in that camera
    (metres) and projected into the frame (pixels); `has_pose` is False for placeholder bodies. The landmark fields
    (BlazePose's 33 landmarks, its pose score, the fit's error in pixels and whether it was trusted) are None
    unless the regressor fits landmarks. Rows of people without a body hold NaN (False for the flags).
    """

    smpl_global_orient: np.ndarray
    smpl_body_pose: np.ndarray
    smpl_betas: np.ndarray
    cam_t: np.ndarray
    focal_length: np.ndarray
    joints_3d: np.ndarray
    joints_2d: np.ndarray
    has_pose: np.ndarray
    landmarks_2d: np.ndarray | None = None
    landmark_visibility: np.ndarray | None = None
    landmarks_world: np.ndarray | None = None
    pose_score: np.ndarray | None = None
    fit_error: np.ndarray | None = None
    reliable: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.has_pose)

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields that are set, by name, in field order."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not None}

    def take(self, rows: np.ndarray) -> BodyArrays:
        """The rows `rows` (int array) in that order; a row of -1 gives a body-less row (NaN, False)."""
        rows = np.asarray(rows, dtype=np.int64)
        found = rows >= 0
        picked = {}
        for name, values in self.arrays().items():
            out = np.full((len(rows),) + values.shape[1:], False if values.dtype == bool else np.nan, values.dtype)
            out[found] = values[rows[found]]
            picked[name] = out
        return BodyArrays(**picked)

    @classmethod
    def from_tensors(cls, params: BodyParams, joints_3d: torch.Tensor, joints_2d: torch.Tensor) -> BodyArrays:
        """All people of a batch, converted to numpy once (float32, bool flags)."""

        def as_numpy(t: torch.Tensor) -> np.ndarray:
            t = t.detach().cpu()
            return t.numpy() if t.dtype == torch.bool else t.float().numpy()

        reliable = None if params.reliable is None else as_numpy(params.reliable)
        trusted = np.ones(len(params), dtype=bool) if reliable is None else reliable
        landmarks = params.landmarks
        return cls(
            smpl_global_orient=as_numpy(params.global_orient),
            smpl_body_pose=as_numpy(params.body_pose),
            smpl_betas=as_numpy(params.betas),
            cam_t=as_numpy(params.cam_t),
            focal_length=as_numpy(params.focal_length),
            joints_3d=as_numpy(joints_3d),
            joints_2d=as_numpy(joints_2d),
            has_pose=np.full(len(params), params.has_pose) & trusted,
            landmarks_2d=None if landmarks is None else as_numpy(landmarks.image),
            landmark_visibility=None if landmarks is None else as_numpy(landmarks.visibility),
            landmarks_world=None if landmarks is None else as_numpy(landmarks.world),
            pose_score=None if landmarks is None else as_numpy(landmarks.score),
            fit_error=None if params.fit_error is None else as_numpy(params.fit_error),
            reliable=reliable,
        )

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BodyArrays | None:
        """Bodies from per-box arrays by field name (e.g. a results record); None when the SMPL fields are absent."""
        names = [f.name for f in fields(cls)]
        required = [f.name for f in fields(cls) if f.default is not None]
        if any(name not in arrays for name in required):
            return None
        return cls(**{name: np.asarray(arrays[name]) for name in names if name in arrays})


@dataclass
class Bodies:
    """All people of a window, in crop order: parameters and joints in the full-frame camera, and (when a stage
    needs meshes) the posed vertices.

    joints_3d B×24×3 are metres in the camera frame (x right, y down, z forward, cam_t applied); joints_2d B×24×2
    are frame pixels; vertices B×V×3 are the posed meshes in that camera frame (cam_t applied), posed once per
    window for every stage that draws or samples them, or None. frame_ids/det_ids say which frame of the window and
    which detection; `people` holds the crops (with pixels only when asked for).
    """

    people: PersonBatch
    params: BodyParams
    joints_3d: torch.Tensor
    joints_2d: torch.Tensor
    vertices: torch.Tensor | None
    frame_ids: np.ndarray
    det_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.params)

    def frame_rows(self, num_frames: int) -> list[np.ndarray]:
        """For each frame of the window, the rows of the batch that belong to it, in detection order."""
        order = np.lexsort((self.det_ids, self.frame_ids))
        bounds = np.searchsorted(self.frame_ids[order], np.arange(num_frames + 1))
        return [order[bounds[f] : bounds[f + 1]] for f in range(num_frames)]
