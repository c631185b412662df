"""Detections → bodies: the cheap joints path, template bodies inside their boxes, meshes posed once, and the
per-frame and per-track bookkeeping."""
import numpy as np
import pytest
import torch
from conftest import CONFIGS
from hydra import compose, initialize_config_dir
from smplx.lbs import batch_rodrigues

from models.body import load_body_model
from models.body_estimation import MESH_BATCH, BodyEstimator
from models.structures import Detections, Frame, ScoreThresholds, window_observations
from tracker.build import build_regressor
from tracker.schema import CUT_KEY, FRAME_KEYS, body_keys
from tracker.tracker import Tracker


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def estimator(body):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("track", overrides=["regressor=template"])
    return BodyEstimator(build_regressor(cfg, body), body)


def test_joints_path_equals_skinned_forward(body):
    torch.manual_seed(0)
    batch = 5
    orient = batch_rodrigues(torch.randn(batch, 3)).reshape(batch, 1, 3, 3)
    pose = batch_rodrigues(0.4 * torch.randn(batch * 23, 3)).reshape(batch, 23, 3, 3)
    betas, transl = torch.randn(batch, 10), torch.randn(batch, 3)
    with torch.inference_mode():
        expected = body(orient, pose, betas, transl=transl).joints
        got = body.joints(orient, pose, betas, transl=transl)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_template_bodies_project_into_their_boxes(estimator):
    frames = [Frame(1, 0.0, np.zeros((480, 640, 3), np.uint8)), Frame(2, 0.1, np.zeros((480, 640, 3), np.uint8))]
    boxes = [[[100, 50, 160, 250], [400, 200, 430, 290]], [[300, 100, 380, 400]]]
    detections = [Detections(b, np.ones(len(b))) for b in boxes]
    bodies = estimator.estimate(frames, detections)
    assert len(bodies) == 3 and not bodies.params.has_pose
    for observations, frame_boxes in zip(window_observations(frames, detections, bodies), boxes):
        arrays = observations.bodies
        assert len(arrays) == len(frame_boxes) and not arrays.has_pose.any()
        for joints, (x1, y1, x2, y2) in zip(arrays.joints_2d, frame_boxes):
            height = y2 - y1
            assert joints[:, 1].min() >= y1 - 0.02 * height and joints[:, 1].max() <= y2 + 0.02 * height
            assert x1 <= joints[0, 0] <= x2
        assert (arrays.cam_t[:, 2] > 0).all()


def test_empty_window(estimator):
    frames = [Frame(1, 0.0, np.zeros((48, 64, 3), np.uint8))]
    bodies = estimator.estimate(frames, [Detections.empty()])
    (observations,) = window_observations(frames, [Detections.empty()], bodies)
    assert len(bodies) == 0 and observations.bodies.joints_2d.shape == (0, 24, 2)


def test_meshes_are_posed_once_in_the_camera_frame(estimator, body):
    frames = [Frame(1, 0.0, np.zeros((480, 640, 3), np.uint8))]
    detections = [Detections([[100, 50, 160, 250], [400, 200, 430, 290]], [1.0, 1.0])]
    bodies = estimator.estimate(frames, detections)
    assert bodies.vertices is None
    estimator.pose_meshes(bodies)
    params = bodies.params
    expected = body(params.global_orient, params.body_pose, params.betas).vertices + params.cam_t[:, None]
    torch.testing.assert_close(bodies.vertices, expected, atol=1e-5, rtol=0)
    (observations,) = window_observations(frames, detections, bodies)
    assert observations.vertices.shape == (2, body.num_vertices, 3)



def test_meshes_of_many_people_are_posed_in_batches_with_the_same_result(estimator, body):
    """pose_meshes poses MESH_BATCH people per pass (memory flat in the people of a window): a window with more
    people gets what one pass of the body model gives."""
    count = MESH_BATCH + 5
    frames = [Frame(1, 0.0, np.zeros((480, 640, 3), np.uint8))]
    x = np.linspace(10, 560, count)
    detections = [Detections(np.stack([x, x / 4, x + 60, x / 4 + 200], axis=1), np.ones(count))]
    bodies = estimator.estimate(frames, detections)
    bodies.params.body_pose = batch_rodrigues(0.3 * torch.randn(count * 23, 3)).reshape(count, 23, 3, 3)
    estimator.pose_meshes(bodies)
    params = bodies.params
    with torch.no_grad():
        expected = body(params.global_orient, params.body_pose, params.betas, transl=params.cam_t).vertices
    assert bodies.vertices.shape == (count, body.num_vertices, 3)
    torch.testing.assert_close(bodies.vertices, expected, atol=1e-6, rtol=0)

def test_tracks_get_the_bodies_and_meshes_of_their_matched_detections_only(estimator):
    tracker = Tracker(ScoreThresholds(high=0.5, low=0.1, new_track=0.5), n_init=1)
    image = np.zeros((480, 640, 3), np.uint8)
    first = [[100, 50, 160, 250], [400, 200, 430, 290]]
    for index, boxes in ((1, first), (2, first), (3, first[1:])):
        frames, detections = [Frame(index, 0.0, image)], [Detections(boxes, np.ones(len(boxes)))]
        bodies = estimator.estimate(frames, detections)
        estimator.pose_meshes(bodies)
        (observations,) = window_observations(frames, detections, bodies)
        tracked = tracker.update(observations)
    # Frame 3: track 1 lost its person (no body, no mesh), track 2 matched detection 0.
    assert tracked.track_ids.tolist() == [1, 2] and tracked.det_index.tolist() == [-1, 0]
    assert np.isnan(tracked.bodies.cam_t[0]).all() and not tracked.bodies.has_pose.any()
    np.testing.assert_array_equal(tracked.bodies.cam_t[1], observations.bodies.cam_t[0])
    assert torch.isnan(tracked.vertices[0]).all()
    torch.testing.assert_close(tracked.vertices[1], observations.vertices[0])
    record = tracked.record()
    assert set(record) == {*FRAME_KEYS, CUT_KEY, *body_keys(with_landmarks=False)} and record[CUT_KEY] is False
    assert np.isnan(record["cam_t"][0]).all() and record["frame"] == 3
