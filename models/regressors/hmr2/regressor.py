"""HMR2.0 (4D-Humans) as a `Regressor`: person crops → BodyParams."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from models.camera import cam_crop_to_full, full_frame_focal_length
from models.regressors.base import Regressor
from models.regressors.hmr2.checkpoint import CHECKPOINT_SOURCE, load_checkpoint
from models.regressors.hmr2.network import HMR2Network, architecture, pose_to_rotmats
from models.structures import DEFAULT_CROP_SPEC, BodyParams, CropSpec, InputError, PersonBatch

log = logging.getLogger(__name__)

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class HMR2Regressor(Regressor):
    """HMR2.0 (4D-Humans): ViT backbone + transformer SMPL head, loaded from the released Lightning checkpoint.

    checkpoint: path to the .ckpt (required unless random_weights, which exists for benchmarks and tests).
    preset: "vit_h" (the released model) or "small". amp_dtype: None, "bfloat16" or "float16" autocast on `device`.
    focal_length: the crop camera's focal length in pixels for a crop of crop_spec.size (5000 for 256 in HMR2.0).
    """

    name = "hmr2"

    def __init__(
        self,
        checkpoint: str | None = None,
        preset: str = "vit_h",
        device: str | torch.device = "cpu",
        batch_size: int = 32,
        amp_dtype: str | None = None,
        focal_length: float = 5000.0,
        crop_spec: CropSpec = DEFAULT_CROP_SPEC,
        trust_checkpoint: bool = False,
        random_weights: bool = False,
    ) -> None:
        if checkpoint is None and not random_weights:
            raise InputError(
                f"regressor=hmr2 needs regressor.checkpoint=PATH: {CHECKPOINT_SOURCE}, or use regressor=template."
            )
        if amp_dtype is not None and amp_dtype not in AMP_DTYPES:
            raise InputError(f"regressor.amp_dtype must be null or one of {sorted(AMP_DTYPES)}, got {amp_dtype!r}.")
        if batch_size < 1:
            raise InputError(f"regressor.batch_size must be at least 1, got {batch_size}.")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.amp_dtype = AMP_DTYPES.get(amp_dtype) if amp_dtype else None
        self.focal_length = focal_length
        self.crop_spec = crop_spec
        arch = architecture(preset)
        if crop_spec.size != arch.backbone.image_hw[0]:
            raise InputError(
                f"regressor.crop_spec.size must be {arch.backbone.image_hw[0]} for HMR2, got {crop_spec.size}."
            )
        self.network = HMR2Network(arch)
        if checkpoint is not None:
            load_checkpoint(self.network, checkpoint, trust_checkpoint)
        else:
            log.warning("HMR2 regressor with random weights: outputs are not pose estimates.")
        self.network.eval().to(self.device)

    @torch.inference_mode()
    def predict(self, crops: PersonBatch, frames: Sequence[np.ndarray] | None = None) -> BodyParams:
        if crops.crops.shape[-2:] != (self.crop_spec.size, self.crop_spec.size):
            raise InputError(
                f"HMR2 expects {self.crop_spec.size}×{self.crop_spec.size} crops, got {tuple(crops.crops.shape[-2:])}."
            )
        chunks = [self._forward(chunk) for chunk in crops.crops.to(self.device).split(self.batch_size)]
        pose_6d, betas, pred_cam = (torch.cat(parts) for parts in zip(*chunks))
        global_orient, body_pose = pose_to_rotmats(pose_6d)
        center, size, image_size = (
            t.to(self.device, torch.float32) for t in (crops.center, crops.size, crops.image_size)
        )
        focal = full_frame_focal_length(image_size, self.focal_length, self.crop_spec.size)
        cam_t = cam_crop_to_full(pred_cam, center, size, image_size, focal)
        params = BodyParams(global_orient, body_pose, betas, pred_cam, cam_t, focal, image_size, has_pose=True)
        return params.to(crops.crops.device)

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Network outputs in float32 for one chunk, under autocast when asked."""
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            outputs = self.network(images)
        return tuple(t.float() for t in outputs)
