"""Landmarks → SMPL-format bodies: the joint-only skeleton, recovery of a known pose, and low-confidence flags."""

from __future__ import annotations

import math

import pytest
import torch
from smplx.lbs import batch_rodrigues

from models.body import load_body_model
from models.camera import project
from models.regressors.blazepose.fit import JOINT_LANDMARKS, BodyFitter, FitConfig
from models.structures import NUM_LANDMARKS, PoseLandmarks

FOCAL = 15000.0
IMAGE_SIZE = (768.0, 576.0)


@pytest.fixture(scope="module")
def body_model():
    return load_body_model()


def _random_pose(batch: int, scale: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return batch_rodrigues(torch.randn(batch * 23, 3, generator=generator) * scale).reshape(batch, 23, 3, 3)


def _upright_facing(angle: float) -> torch.Tensor:
    """SMPL → camera rotation of a person standing upright, turned by `angle` about the vertical."""
    turn = batch_rodrigues(torch.tensor([[0.0, angle, 0.0]]))[0]
    return torch.diag(torch.tensor([1.0, -1.0, -1.0])) @ turn


def _synthetic_landmarks(body_model, global_orient, body_pose, cam_t, score: float = 1.0) -> PoseLandmarks:
    """BlazePose-shaped landmarks placed exactly on a posed body's mapped joints (2D projected, 3D hip-centred)."""
    batch = len(global_orient)
    with torch.no_grad():
        joints = body_model(global_orient, body_pose, torch.zeros(batch, 10)).joints
    image_size = torch.tensor([IMAGE_SIZE]).expand(batch, 2)
    pixels = project(joints, cam_t, FOCAL, image_size)
    hips = (joints[:, 1] + joints[:, 2]) / 2
    image = torch.zeros(batch, NUM_LANDMARKS, 2)
    world = torch.zeros(batch, NUM_LANDMARKS, 3)
    for joint, landmark_ids, _ in JOINT_LANDMARKS:
        for landmark in landmark_ids:
            image[:, landmark] = pixels[:, joint]
            world[:, landmark] = joints[:, joint] - hips
    ones = torch.ones(batch, NUM_LANDMARKS)
    return PoseLandmarks(image, ones, ones, world, torch.full((batch,), score), image[:, 0], ones[:, 0])


def _boxes_of(landmarks: PoseLandmarks) -> torch.Tensor:
    low = landmarks.image.amin(dim=1) - 5
    high = landmarks.image.amax(dim=1) + 5
    return torch.cat([low, high], dim=1)


def _fit(fitter, landmarks, init=None):
    batch = len(landmarks)
    image_size = torch.tensor([IMAGE_SIZE]).expand(batch, 2)
    return fitter.fit(landmarks, _boxes_of(landmarks), image_size, torch.full((batch,), FOCAL), init)


def test_skeleton_matches_the_body_model_joints(body_model):
    skeleton = body_model.skeleton
    global_orient = _upright_facing(0.7)[None, None].expand(3, 1, 3, 3)
    body_pose = _random_pose(3, 0.4, seed=0)
    betas = torch.randn(3, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = body_model(global_orient, body_pose, betas).joints
        joints = skeleton(torch.cat([global_orient, body_pose], dim=1), betas)
    torch.testing.assert_close(joints, expected, atol=1e-5, rtol=0)


def test_fit_recovers_a_known_pose(body_model):
    batch = 4
    global_orient = torch.stack([_upright_facing(a) for a in (0.0, 1.2, math.pi - 0.3, -2.0)])[:, None]
    body_pose = _random_pose(batch, 0.25, seed=2)
    cam_t = torch.tensor([[-2.0, 0.5, 150.0], [1.0, -1.0, 200.0], [0.0, 0.0, 120.0], [3.0, 2.0, 180.0]])
    landmarks = _synthetic_landmarks(body_model, global_orient, body_pose, cam_t)
    result = _fit(BodyFitter(body_model), landmarks)
    box_height = _boxes_of(landmarks)[:, 3] - _boxes_of(landmarks)[:, 1]
    assert result.reliable.all()
    assert (result.error < 0.03 * box_height).all(), result.error
    with torch.no_grad():
        params = result.params
        fitted = body_model(params.global_orient, params.body_pose, params.betas).joints
        truth = body_model(global_orient, body_pose, torch.zeros(batch, 10)).joints
    mapped = [joint for joint, _, _ in JOINT_LANDMARKS]

    def centred(joints: torch.Tensor) -> torch.Tensor:
        return joints[:, mapped] - (joints[:, 1:2] + joints[:, 2:3]) / 2

    assert (centred(fitted) - centred(truth)).norm(dim=-1).mean() < 0.03  # metres
    pixels = project(fitted, params.cam_t, params.focal_length, params.image_size)
    distances = (pixels[:, mapped] - landmarks.image[:, [ids[0] for _, ids, _ in JOINT_LANDMARKS]]).norm(dim=-1)
    assert (distances.median(dim=1).values < 0.025 * box_height).all(), distances.median(dim=1).values


def test_warm_start_from_a_previous_fit(body_model):
    global_orient = _upright_facing(0.5)[None, None]
    cam_t = torch.tensor([[0.5, 0.0, 150.0]])
    first = _synthetic_landmarks(body_model, global_orient, _random_pose(1, 0.2, seed=3), cam_t)
    fitter = BodyFitter(body_model, FitConfig(warm_steps=10))
    previous = _fit(fitter, first).params
    moved = _synthetic_landmarks(body_model, global_orient, _random_pose(1, 0.2, seed=3), cam_t + 0.05)
    result = _fit(fitter, moved, init=previous)
    box_height = _boxes_of(moved)[0, 3] - _boxes_of(moved)[0, 1]
    assert result.reliable.all()
    assert result.error[0] < 0.025 * box_height


def test_low_confidence_landmarks_are_flagged(body_model):
    global_orient = _upright_facing(0.0)[None, None].expand(3, 1, 3, 3)
    cam_t = torch.tensor([[0.0, 0.0, 150.0]]).expand(3, 3)
    landmarks = _synthetic_landmarks(body_model, global_orient, _random_pose(3, 0.1, seed=4), cam_t)
    landmarks.score[1] = 0.1  # the network says: no person here
    landmarks.visibility[2] = 0.05  # nothing visible
    result = _fit(BodyFitter(body_model), landmarks)
    assert result.reliable.tolist() == [True, False, False]
    assert result.confidence[0] > 0.9 and result.confidence[1] < 0.2 and result.confidence[2] == 0
    assert torch.isfinite(result.params.cam_t).all() and torch.isfinite(result.params.body_pose).all()


def test_empty_batch(body_model):
    empty = torch.zeros(0, NUM_LANDMARKS)
    landmarks = PoseLandmarks(
        torch.zeros(0, NUM_LANDMARKS, 2), empty, empty, torch.zeros(0, NUM_LANDMARKS, 3), torch.zeros(0),
        torch.zeros(0, 2), torch.zeros(0),
    )  # fmt: skip
    result = BodyFitter(body_model).fit(landmarks, torch.zeros(0, 4), torch.zeros(0, 2), torch.zeros(0))
    assert len(result.params) == 0 and result.reliable.shape == (0,)
