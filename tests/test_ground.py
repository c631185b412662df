"""The ground plane from the people: calibration of a known camera from upright people, positions on the ground,
bodies stood on it, and one sentence when a run cannot give one."""
import math

import numpy as np
import pytest
from synthetic_runs import TRUE_CAMERA, true_pixels, write_synthetic_run

from models.body import load_body_model
from models.structures import InputError
from tracker.ground import (
    ANKLES,
    FEET,
    FOOT_JOINT_HEIGHT,
    JOINT_CUE,
    LANDMARK_CUE,
    box_feet_and_heads,
    calibrate,
    camera_rotation,
    estimate_ground,
)
from tracker.io import ResultsWriter, load_results


@pytest.fixture(scope="module")
def body_model():
    return load_body_model()


@pytest.fixture(scope="module")
def run(tmp_path_factory, body_model):
    return write_synthetic_run(tmp_path_factory.mktemp("run"), body_model)


def test_camera_rotation_is_a_rotation_that_tilts_the_view_down():
    rotation = camera_rotation(math.radians(30), math.radians(5))
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(rotation), 1.0)
    forward = rotation @ np.array([0.0, 0.0, 1.0])
    assert forward[2] == pytest.approx(-math.sin(math.radians(30)))  # the optical axis points 30° below horizontal
    level = camera_rotation(0.0, 0.0)
    assert np.allclose(level @ np.array([0.0, 1.0, 0.0]), [0.0, 0.0, -1.0])  # image down is world down


@pytest.mark.parametrize("cue", [LANDMARK_CUE, JOINT_CUE], ids=["landmarks", "joints"])
def test_calibration_recovers_the_camera_from_upright_people(cue):
    rng = np.random.default_rng(1)
    ground = np.column_stack([rng.uniform(-4, 4, 200), rng.uniform(6, 20, 200)])
    feet = true_pixels(np.column_stack([ground, np.full(200, cue.foot_height)]))
    heads = true_pixels(np.column_stack([ground, np.full(200, cue.head_height)]))
    plane = calibrate(feet + rng.normal(0, 0.3, feet.shape), heads + rng.normal(0, 0.3, heads.shape), cue, (320, 240))
    assert plane.focal == pytest.approx(TRUE_CAMERA.focal, rel=0.05)
    assert math.degrees(plane.pitch) == pytest.approx(20.0, abs=1.0)
    assert math.degrees(plane.roll) == pytest.approx(1.0, abs=0.5)
    assert plane.camera_height == pytest.approx(TRUE_CAMERA.camera_height, rel=0.05)
    on_ground = true_pixels(np.column_stack([ground, np.zeros(200)]))
    assert np.abs(plane.ground_points(on_ground) - ground).max() < 0.25


def test_ground_points_invert_the_projection_and_skip_the_sky():
    points = np.array([[1.0, 10.0, 0.0], [-3.0, 25.0, 0.0]])
    assert np.allclose(TRUE_CAMERA.ground_points(true_pixels(points)), points[:, :2], atol=1e-9)
    horizon_row = TRUE_CAMERA.principal_point[1] - TRUE_CAMERA.focal * math.tan(TRUE_CAMERA.pitch)
    assert np.isnan(TRUE_CAMERA.ground_points(np.array([[160.0, horizon_row - 5]]))).all()


def test_run_gives_its_camera_and_where_people_stood(run):
    results = load_results(run.folder)
    plane = estimate_ground(results)
    assert plane.cue == LANDMARK_CUE.key
    assert plane.focal == pytest.approx(TRUE_CAMERA.focal, rel=2e-3)  # the focal length prior's pull
    assert plane.camera_height == pytest.approx(TRUE_CAMERA.camera_height, rel=2e-3)
    assert plane.focal_uncertainty < 0.01
    for record in results.frames():
        feet = box_feet_and_heads(record["boxes"].astype(np.float64))[0]
        for track_id, point in zip(record["track_ids"].tolist(), plane.ground_points(feet)):
            if (record["frame"], track_id) in run.positions:
                assert point == pytest.approx(run.positions[(record["frame"], track_id)], abs=2e-2)


def test_only_whole_posed_matched_people_calibrate(run):
    results = load_results(run.folder)
    whole = 0
    for record in results.frames():
        boxes = record["boxes"]
        inside = (boxes[:, :2] > 3).all(axis=1) & (boxes[:, 2] < 317) & (boxes[:, 3] < 237)
        whole += int((inside & record["has_pose"] & np.isfinite(record["cam_t"]).all(axis=1)).sum())
    assert 0 < whole < sum(len(record["track_ids"]) for record in results.frames())
    assert estimate_ground(results).observations == whole


def test_bodies_are_stood_on_the_ground_under_their_boxes(run, body_model):
    results = load_results(run.folder)
    record = next(r for r in results.frames() if r["has_pose"].all() and len(r["track_ids"]) == 2)
    joints = record["joints_3d"].astype(np.float64) - record["cam_t"][:, None]
    rotation, offsets = TRUE_CAMERA.place_bodies(joints, record["boxes"])
    placed = joints @ rotation.T + offsets[:, None]
    feet = TRUE_CAMERA.ground_points(box_feet_and_heads(record["boxes"].astype(np.float64))[0])
    assert np.allclose(placed[:, list(ANKLES), :2].mean(axis=1), feet)
    assert np.allclose(placed[:, list(ANKLES + FEET), 2].min(axis=1), FOOT_JOINT_HEIGHT)
    head_above_pelvis = placed[:, 15, 2] - placed[:, 0, 2]
    assert (head_above_pelvis > 0.5).all()  # upright: the true camera's rotation stands the bodies up


def test_runs_without_posed_people_say_so(tmp_path):
    header = {"name": "empty", "fps": 10.0, "width": 64, "height": 48, "frame_numbers": [1, 1, 1]}
    with ResultsWriter(tmp_path, header) as writer:
        writer.write_frame({"frame": 1, "time": 0.0, "track_ids": np.zeros(0, np.int64), "boxes": np.zeros((0, 4)),
                            "scores": np.zeros(0), "states": np.zeros(0, str)})  # fmt: skip
    with pytest.raises(InputError, match="no bodies"):
        estimate_ground(load_results(tmp_path))


def test_too_few_people_say_how_many_are_needed(run, monkeypatch):
    monkeypatch.setattr("tracker.ground.MIN_OBSERVATIONS", 1000)
    with pytest.raises(InputError, match="needs at least 1000"):
        estimate_ground(load_results(run.folder))
