"""Detections → bodies: the cheap joints path, template bodies inside their boxes, per-frame bookkeeping."""
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from smplx.lbs import batch_rodrigues

from models.body import load_body_model
from models.body_estimation import BodyEstimator
from models.detection.base import Detections
from tracker.io.frames import Frame
from tracker.pipeline import build_regressor, frame_record
from tracker.tracker import TrackedFrame

CONFIGS = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "configs")


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def estimator(body):
    with initialize_config_dir(config_dir=CONFIGS, version_base="1.3"):
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
    for frame, frame_boxes in enumerate(boxes):
        arrays = bodies.frame_arrays(frame, len(frame_boxes))
        for joints, (x1, y1, x2, y2) in zip(arrays["joints_2d"], frame_boxes):
            height = y2 - y1
            assert joints[:, 1].min() >= y1 - 0.02 * height and joints[:, 1].max() <= y2 + 0.02 * height
            assert x1 <= joints[0, 0] <= x2
        assert (arrays["cam_t"][:, 2] > 0).all()


def test_empty_window(estimator):
    frames = [Frame(1, 0.0, np.zeros((48, 64, 3), np.uint8))]
    bodies = estimator.estimate(frames, [Detections.empty()])
    assert len(bodies) == 0 and bodies.frame_arrays(0, 0)["joints_2d"].shape == (0, 24, 2)


def test_frame_record_attaches_bodies_to_matched_tracks_only():
    tracked = TrackedFrame(
        frame=3,
        track_ids=np.array([7, 8, 9]),
        boxes=np.zeros((3, 4), np.float32),
        scores=np.ones(3, np.float32),
        states=np.array(["confirmed", "lost", "tentative"]),
        det_index=np.array([1, -1, 0]),
    )
    per_detection = {"cam_t": np.array([[0, 0, 5.0], [0, 0, 9.0]]), "has_pose": np.array([True, True])}
    record = frame_record(tracked, 0.3, per_detection)
    np.testing.assert_array_equal(record["cam_t"][[0, 2], 2], [9.0, 5.0])
    assert np.isnan(record["cam_t"][1]).all() and record["has_pose"].tolist() == [True, False, True]
