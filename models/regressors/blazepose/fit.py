"""Fits SMPL-format bodies to BlazePose landmarks: a batched torch optimisation over all people of a window.

Only the body model's 24 joints are posed (its joint regressor applied to the shaped template, then forward
kinematics), never the mesh, which keeps one step cheap. Each person starts from an inverse-kinematics guess built
from BlazePose's 3D world landmarks (root orientation from hips and shoulders, then each limb swung onto its
landmark direction) or from a previous fit; Adam then minimises, per person,
  2D reprojection of the mapped joints to the landmarks (frame pixels / box height, visibility weighted, robust)
+ 3D agreement of the hip-centred joints with the world landmarks (visibility weighted)
+ a joint-angle prior and knee/elbow limits (+ a shape prior when betas are fitted).
The camera is fitted in the weak-perspective limit (pixels per metre and the image position of the body origin) of
HMR2's full-frame camera, whose focal length puts people tens of metres away, then written as its translation.
The result is the `BodyParams` contract of the HMR2 regressor, plus per-person confidence, reprojection error and
a reliability flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from smplx.lbs import batch_rodrigues

from models.body import BodyModel
from models.structures import BodyParams, PoseLandmarks
from models.torch_threads import torch_threads

# SMPL joint ← BlazePose landmark(s) averaged, and the pair's weight (the foot, hand and head joints only roughly
# coincide with toe tip, knuckles and ears). SMPL's pelvis, spine, neck and collar joints have no landmark.
JOINT_LANDMARKS: tuple[tuple[int, tuple[int, ...], float], ...] = (
    (1, (23,), 1.0), (2, (24,), 1.0), (4, (25,), 1.0), (5, (26,), 1.0), (7, (27,), 1.0), (8, (28,), 1.0),
    (10, (31,), 0.5), (11, (32,), 0.5), (15, (7, 8), 0.5), (16, (11,), 1.0), (17, (12,), 1.0), (18, (13,), 1.0),
    (19, (14,), 1.0), (20, (15,), 1.0), (21, (16,), 1.0), (22, (17, 19), 0.5), (23, (18, 20), 0.5),
)  # fmt: skip
LEFT_HIP, RIGHT_HIP, LEFT_SHOULDER, RIGHT_SHOULDER = 1, 2, 16, 17
# Limb joints set by the inverse-kinematics guess, parents first: (joint, child joint it points at).
SWING_CHAIN: tuple[tuple[int, int], ...] = (
    (1, 4), (2, 5), (4, 7), (5, 8), (7, 10), (8, 11), (16, 18), (17, 19), (18, 20), (19, 21), (20, 22), (21, 23),
)  # fmt: skip
# Natural bending direction of the hinge joints (SMPL axis-angle): (joint, axis, sign of a natural bend).
HINGES: tuple[tuple[int, int, float], ...] = ((4, 0, 1.0), (5, 0, 1.0), (18, 1, -1.0), (19, 1, 1.0))
# Joint-angle prior weight per SMPL joint (index 0 unused): loose for hips, shoulders, knees and elbows; stiff for
# the spine, neck, collars and the leaf joints that landmarks barely constrain.
POSE_PRIOR_WEIGHTS = (0.0, 0.3, 0.3, 3.0, 0.3, 0.3, 3.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 2.0, 2.0, 3.0, 0.3, 0.3,
                      0.3, 0.3, 1.0, 1.0, 3.0, 3.0)  # fmt: skip
EPS = 1e-8


@dataclass(frozen=True)
class FitConfig:
    """Optimisation and acceptance settings (configs/regressor/blazepose.yaml, key `fit`). `threads`: torch
    intra-op threads while fitting (its tensors are tiny: more threads only add synchronisation), None to keep."""

    steps: int = 30
    warm_steps: int = 10
    learning_rate: float = 0.03
    warm_learning_rate: float = 0.01
    weight_2d: float = 1.0
    weight_3d: float = 1.0
    weight_pose_prior: float = 1.0
    weight_limits: float = 1.0
    weight_betas: float = 0.01
    fit_betas: bool = False
    robust_scale: float = 0.1
    world_scale: float = 0.1
    min_visibility: float = 0.5
    min_score: float = 0.5
    min_visible_joints: int = 8
    max_error: float = 0.15
    threads: int | None = 1


@dataclass
class FitResult:
    """Fitted bodies for B people: `params` (BodyParams, HMR2 conventions), `confidence` B in [0, 1] (pose flag ×
    share of visible mapped joints), `error` B median 2D distance (px) of visible mapped joints to their landmarks,
    `reliable` B bool: confidence, visible joints and error all pass the config's thresholds."""

    params: BodyParams
    confidence: torch.Tensor
    error: torch.Tensor
    reliable: torch.Tensor


def _rotation_between(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """B×3×3 smallest rotations taking unit vectors source B×3 onto target B×3."""
    axis = torch.cross(source, target, dim=-1)
    sine = axis.norm(dim=-1, keepdim=True)
    cosine = (source * target).sum(-1, keepdim=True)
    angle = torch.atan2(sine, cosine)
    return batch_rodrigues(axis / sine.clamp(min=EPS) * angle)


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=EPS)


def _joint_targets(landmarks: torch.Tensor) -> torch.Tensor:
    """B×J×C landmark positions for the mapped SMPL joints (averaging multi-landmark joints)."""
    return torch.stack([landmarks[:, list(ids)].mean(dim=1) for _, ids, _ in JOINT_LANDMARKS], dim=1)


def root_orientation(world: torch.Tensor) -> torch.Tensor:
    """B×3×3 body-to-camera rotation from world landmarks: SMPL's x (person's left), y (up), z (front)."""
    left = (world[:, 23] - world[:, 24]) + (world[:, 11] - world[:, 12])
    up = (world[:, 11] + world[:, 12] - world[:, 23] - world[:, 24]) / 2
    x_axis = _normalize(left)
    y_axis = _normalize(up - (up * x_axis).sum(-1, keepdim=True) * x_axis)
    return torch.stack([x_axis, y_axis, torch.cross(x_axis, y_axis, dim=-1)], dim=-1)


def inverse_kinematics(world: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """B×24×3×3 local rotations: root from hips and shoulders, each limb of SWING_CHAIN swung (no twist) onto the
    direction between its world landmarks; rest B×24×3 are the rest-pose joints."""
    batch = world.shape[0]
    rotations = torch.eye(3, device=world.device).repeat(batch, 24, 1, 1)
    rotations[:, 0] = root_orientation(world)
    targets = {joint: world[:, list(ids)].mean(dim=1) for joint, ids, _ in JOINT_LANDMARKS}
    frames = {0: rotations[:, 0]}
    parents = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
    swing = dict(SWING_CHAIN)
    for joint in range(1, 24):
        parent_frame = frames[parents[joint]]
        if joint in swing:
            child = swing[joint]
            observed = _normalize(targets[child] - targets[joint])
            local = (parent_frame.transpose(1, 2) @ observed[..., None])[..., 0]
            rotations[:, joint] = _rotation_between(_normalize(rest[:, child] - rest[:, joint]), local)
        frames[joint] = parent_frame @ rotations[:, joint]
    return rotations


def _matrix_to_axis_angle(matrices: torch.Tensor) -> torch.Tensor:
    """…×3 axis-angle of rotation matrices …×3×3 (angles below π)."""
    trace = matrices[..., 0, 0] + matrices[..., 1, 1] + matrices[..., 2, 2]
    angle = torch.acos(((trace - 1) / 2).clamp(-1 + 1e-6, 1 - 1e-6))
    axis = torch.stack(
        [
            matrices[..., 2, 1] - matrices[..., 1, 2],
            matrices[..., 0, 2] - matrices[..., 2, 0],
            matrices[..., 1, 0] - matrices[..., 0, 1],
        ],
        dim=-1,
    )
    return axis / (2 * torch.sin(angle)[..., None]).clamp(min=EPS) * angle[..., None]


class BodyFitter:
    """Fits body-model parameters to landmarks for all people of a batch at once (see the module docstring)."""

    def __init__(self, body_model: BodyModel, config: FitConfig = FitConfig()) -> None:
        self.config = config
        self.skeleton = body_model.skeleton
        self.num_betas = body_model.num_betas
        mapped = [joint for joint, _, _ in JOINT_LANDMARKS]
        self.mapped_joints = torch.tensor(mapped)
        self.pair_weights = torch.tensor([w for _, _, w in JOINT_LANDMARKS])
        self.prior_weights = torch.tensor(POSE_PRIOR_WEIGHTS)

    def to(self, device: torch.device | str) -> BodyFitter:
        self.skeleton.to(device)
        return self

    def fit(
        self,
        landmarks: PoseLandmarks,
        boxes: torch.Tensor,
        image_size: torch.Tensor,
        focal_length: torch.Tensor,
        init: BodyParams | None = None,
    ) -> FitResult:
        """Bodies for landmarks of B people with boxes B×4 (xyxy px) in frames of image_size B×2 (w, h), for a
        full-frame camera of focal_length B px. `init` (B people, BodyParams) warm-starts the fit: fewer steps."""
        with torch_threads(self.config.threads):
            return self._fit(landmarks, boxes, image_size, focal_length, init)

    def _fit(
        self,
        landmarks: PoseLandmarks,
        boxes: torch.Tensor,
        image_size: torch.Tensor,
        focal_length: torch.Tensor,
        init: BodyParams | None,
    ) -> FitResult:
        device = landmarks.image.device
        config = self.config
        batch = len(landmarks)
        if batch == 0:
            return self._empty(device)
        mapped = self.mapped_joints.to(device)
        box_height = (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0)
        target_2d = _joint_targets(landmarks.image)
        target_3d = _joint_targets(landmarks.world)
        target_3d = target_3d - (target_3d[:, :1] + target_3d[:, 1:2]) / 2  # hip-centred, as the world landmarks
        visibility = torch.stack([landmarks.visibility[:, list(ids)].min(dim=1).values
                                  for _, ids, _ in JOINT_LANDMARKS], dim=1)  # fmt: skip
        weights = visibility * self.pair_weights.to(device)

        if init is None:
            betas0 = torch.zeros(batch, self.num_betas, device=device)
            rotations0 = inverse_kinematics(landmarks.world, self.skeleton.rest_joints(betas0))
        else:
            betas0 = init.betas.to(device)
            rotations0 = torch.cat([init.global_orient, init.body_pose], dim=1).to(device)
        pixel_scale0, origin0 = self._initial_camera(rotations0, betas0, target_2d, target_3d, visibility, init)
        steps = config.warm_steps if init is not None else config.steps

        root_delta = torch.zeros(batch, 3, device=device, requires_grad=True)
        pose = _matrix_to_axis_angle(rotations0[:, 1:]).clone().requires_grad_(True)
        betas = betas0.clone().requires_grad_(config.fit_betas)
        log_scale = torch.zeros(batch, device=device, requires_grad=True)
        shift = torch.zeros(batch, 2, device=device, requires_grad=True)
        variables = [root_delta, pose, log_scale, shift] + ([betas] if config.fit_betas else [])
        learning_rate = config.warm_learning_rate if init is not None else config.learning_rate
        optimizer = torch.optim.Adam(variables, lr=learning_rate)
        prior_weights = self.prior_weights[1:].to(device)
        weights_3d = self.pair_weights.to(device) * (0.2 + 0.8 * visibility)
        hinge_joints = torch.tensor([joint - 1 for joint, _, _ in HINGES], device=device)
        hinge_axes = torch.zeros(len(HINGES), 3, device=device)
        for k, (_, axis, sign) in enumerate(HINGES):
            hinge_axes[k, axis] = sign

        def posed(root_delta: torch.Tensor, pose: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, ...]:
            root = rotations0[:, 0] @ batch_rodrigues(root_delta)
            rotations = torch.cat([root[:, None], batch_rodrigues(pose.reshape(-1, 3)).reshape(batch, 23, 3, 3)], 1)
            return rotations, self.skeleton(rotations, betas)[:, mapped]

        with torch.enable_grad():  # callers may run under no_grad: the fit itself needs gradients
            for _ in range(steps):
                _, joints = posed(root_delta, pose, betas)
                scale = pixel_scale0 * torch.exp(log_scale)
                origin = origin0 + shift * box_height[:, None]
                projected = origin[:, None] + scale[:, None, None] * joints[..., :2]
                residual_2d = (projected - target_2d).norm(dim=-1) / (box_height[:, None] * config.robust_scale)
                loss_2d = (weights * residual_2d.square() / (1 + residual_2d.square())).sum(-1)
                centred = joints - (joints[:, :1] + joints[:, 1:2]) / 2
                loss_3d = (weights_3d * (centred - target_3d).square().sum(-1)).sum(-1) / config.world_scale**2
                loss_prior = (prior_weights[:, None] * pose.square()).sum((-1, -2))
                hinge_pose = pose[:, hinge_joints]
                bend = (hinge_pose * hinge_axes).sum(-1)
                off_axis = (hinge_pose * (1 - hinge_axes.abs())).square().sum(-1)
                loss_limits = (torch.relu(-bend).square() + off_axis).sum(-1)
                loss = (
                    config.weight_2d * loss_2d
                    + config.weight_3d * loss_3d
                    + config.weight_pose_prior * loss_prior
                    + config.weight_limits * loss_limits
                    + config.weight_betas * betas.square().sum(-1)
                )
                optimizer.zero_grad(set_to_none=True)
                loss.sum().backward()
                optimizer.step()

        with torch.no_grad():
            rotations, joints = posed(root_delta, pose, betas)
            scale = pixel_scale0 * torch.exp(log_scale)
            origin = origin0 + shift * box_height[:, None]
            projected = origin[:, None] + scale[:, None, None] * joints[..., :2]
            return self._result(rotations, betas.detach().clone(), scale, origin, projected, box_height, target_2d,
                                visibility, landmarks.score, image_size, focal_length)  # fmt: skip

    def _initial_camera(
        self,
        rotations: torch.Tensor,
        betas: torch.Tensor,
        target_2d: torch.Tensor,
        target_3d: torch.Tensor,
        visibility: torch.Tensor,
        init: BodyParams | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels per metre B and image position B×2 of the body origin, least squares on visible joints."""
        with torch.no_grad():
            joints = self.skeleton(rotations, betas)[:, self.mapped_joints.to(rotations.device)]
            weights = (visibility > self.config.min_visibility).float() + 1e-3
            mean_2d = (weights[..., None] * target_2d).sum(1) / weights.sum(1, keepdim=True)
            mean_3d = (weights[..., None] * joints[..., :2]).sum(1) / weights.sum(1, keepdim=True)
            a = target_2d - mean_2d[:, None]
            b = joints[..., :2] - mean_3d[:, None]
            scale = (weights * (a * b).sum(-1)).sum(1) / (weights * b.square().sum(-1)).sum(1).clamp(min=EPS)
            if init is not None:
                scale = init.focal_length / init.cam_t[:, 2]
            scale = scale.clamp(min=1.0)
            return scale, mean_2d - scale[:, None] * mean_3d

    def _result(
        self,
        rotations: torch.Tensor,
        betas: torch.Tensor,
        scale: torch.Tensor,
        origin: torch.Tensor,
        projected: torch.Tensor,
        box_height: torch.Tensor,
        target_2d: torch.Tensor,
        visibility: torch.Tensor,
        score: torch.Tensor,
        image_size: torch.Tensor,
        focal_length: torch.Tensor,
    ) -> FitResult:
        config = self.config
        depth = focal_length / scale
        cam_t = torch.cat([(origin - image_size / 2) * (depth / focal_length)[:, None], depth[:, None]], dim=1)
        visible = visibility > config.min_visibility
        distances = (projected - target_2d).norm(dim=-1)
        error = torch.where(visible, distances, torch.nan).nanmedian(dim=1).values
        error = torch.nan_to_num(error, nan=float("inf"))
        confidence = score * visible.float().mean(dim=1)
        reliable = (
            (score >= config.min_score)
            & (visible.sum(dim=1) >= config.min_visible_joints)
            & (error <= config.max_error * box_height)
        )
        params = BodyParams(
            global_orient=rotations[:, :1].detach(),
            body_pose=rotations[:, 1:].detach(),
            betas=betas,
            pred_cam=torch.zeros_like(cam_t),
            cam_t=cam_t,
            focal_length=focal_length,
            image_size=image_size,
            has_pose=True,
        )
        return FitResult(params, confidence, error, reliable)

    def _empty(self, device: torch.device) -> FitResult:
        zeros = torch.zeros(0, device=device)
        params = BodyParams(
            torch.zeros(0, 1, 3, 3, device=device), torch.zeros(0, 23, 3, 3, device=device),
            torch.zeros(0, self.num_betas, device=device), torch.zeros(0, 3, device=device),
            torch.zeros(0, 3, device=device), zeros, torch.zeros(0, 2, device=device), has_pose=True,
        )  # fmt: skip
        return FitResult(params, zeros, zeros, torch.zeros(0, dtype=torch.bool, device=device))
