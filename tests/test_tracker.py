"""Tracker core: Kalman filter, gated assignment, lifecycle and identity on synthetic detections."""
import numpy as np
import pytest

from models.structures import (
    Detections,
    Frame,
    Observations,
    ScoreThresholds,
    cxcywh_to_xyxy,
    iou_matrix,
    xyxy_to_cxcywh,
)
from tracker.assign import assign
from tracker.predict import BoxKalmanFilter
from tracker.tracker import TrackedFrame, Tracker

IMAGE = np.zeros((480, 640, 3), np.uint8)


def make_tracker(**overrides) -> Tracker:
    params = dict(thresholds=ScoreThresholds(high=0.5, low=0.1, new_track=0.6), n_init=3, max_age=5)
    params.update(overrides)
    return Tracker(**params)


def track_frame(tracker: Tracker, detections: Detections, frame: int) -> TrackedFrame:
    """One tracker update on a blank 640×480 frame with these detections and no bodies."""
    return tracker.update(Observations(Frame(frame, frame / 10, IMAGE), detections))


def box(cx: float, cy: float, w: float = 30.0, h: float = 80.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_box_conversions_round_trip():
    boxes = np.array([[10.0, 20.0, 40.0, 100.0], [0.0, 0.0, 1.0, 2.0]])
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(boxes)), boxes)


def test_kalman_learns_constant_velocity():
    kf = BoxKalmanFilter()
    mean, cov = kf.initiate(np.array([box(100, 100)]))
    for step in range(1, 15):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, np.array([box(100 + 4 * step, 100)]))
    predicted, _ = kf.predict(mean, cov)
    assert predicted[0, 0] == pytest.approx(100 + 4 * 15, abs=1.0)
    assert predicted[0, 4] == pytest.approx(4.0, abs=0.5)


def test_iou_matrix_known_values():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])


def test_assign_respects_gate_and_minimises_cost():
    cost = np.array([[0.1, 0.9], [0.2, 0.3], [0.95, 0.99]])
    matches, rows, cols = assign(cost, max_cost=0.5)
    assert sorted(map(tuple, matches)) == [(0, 0), (1, 1)]
    assert list(rows) == [2] and list(cols) == []


def test_assign_empty():
    matches, rows, cols = assign(np.zeros((0, 3)), 0.5)
    assert matches.shape == (0, 2) and list(cols) == [0, 1, 2] and len(rows) == 0


def test_lifecycle_tentative_confirmed_lost_deleted():
    tracker = make_tracker(max_age=5)
    seen = [track_frame(tracker, Detections([box(100 + 2 * frame, 100)], [0.9]), frame) for frame in (1, 2, 3)]
    states = [out.states[0] for out in seen]
    assert states == ["tentative", "tentative", "confirmed"]
    missed = [track_frame(tracker, Detections.empty(), frame) for frame in range(4, 11)]
    # Lost (its box still predicted) for exactly max_age missed frames, then deleted.
    assert [out.states.tolist() for out in missed] == [["lost"]] * 5 + [[], []]
    assert all(out.det_index.tolist() == [-1] for out in missed[:5])


def test_unconfirmed_track_dies_when_missed():
    tracker = make_tracker()
    track_frame(tracker, Detections([box(100, 100)], [0.9]), 1)
    out = track_frame(tracker, Detections.empty(), 2)
    assert len(out) == 0


def test_identities_hold_for_two_walkers_and_a_gap():
    tracker = make_tracker()
    ids_a, ids_b = set(), set()
    for frame in range(1, 30):
        a, b = box(100 + 3 * frame, 100), box(400 - 3 * frame, 300)
        dets = Detections([a, b], [0.9, 0.9]) if frame not in (12, 13) else Detections([b], [0.9])
        out = track_frame(tracker, dets, frame)
        for track_id, det, state in zip(out.track_ids, out.det_index, out.states):
            if det < 0 or state != "confirmed":
                continue
            (ids_a if dets.boxes[det][1] < 200 else ids_b).add(int(track_id))
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_low_score_detection_extends_confirmed_track_only():
    tracker = make_tracker()
    for frame in range(1, 5):
        track_frame(tracker, Detections([box(100, 100)], [0.9]), frame)
    out = track_frame(tracker, Detections([box(100, 100), box(500, 100)], [0.2, 0.2]), 5)
    assert len(out) == 1 and out.states[0] == "confirmed" and out.det_index[0] == 0


def test_det_index_points_at_matched_detection():
    tracker = make_tracker(n_init=1)
    dets = Detections([box(100, 100), box(300, 100)], [0.9, 0.9])
    track_frame(tracker, dets, 1)
    swapped = Detections([box(302, 100), box(101, 100)], [0.9, 0.9])
    out = track_frame(tracker, swapped, 2)
    by_id = dict(zip(out.track_ids.tolist(), out.det_index.tolist()))
    assert by_id == {1: 1, 2: 0}


def test_rejects_inverted_thresholds():
    with pytest.raises(ValueError, match="low <= high <= new_track"):
        ScoreThresholds(high=0.5, low=0.9, new_track=0.9)
