"""PHALP's cost and location forecast: the published formula, missing cues, and the tracker wired to them."""
import math

import numpy as np
import pytest
from scipy import stats

from models.structures import Detections, ScoreThresholds
from tracker.cost import PhalpCost
from tracker.features import Cues, TrackCues
from tracker.predict import linear_forecast
from tracker.tracker import Tracker


def reference_forecast(t, y, target, alpha):
    """One series the slow way: ridge on the slope with an intercept, and the textbook prediction interval."""
    t_mean, y_mean = t.mean(), y.mean()
    slope = ((t - t_mean) * (y - y_mean)).sum() / (((t - t_mean) ** 2).sum() + alpha)
    fitted = y_mean + slope * (t - t_mean)
    n = len(t)
    s_err = math.sqrt(((y - fitted) ** 2).sum() / (n - 2))
    leverage = math.sqrt(1 + 1 / n + (target - t_mean) ** 2 / ((t - t_mean) ** 2).sum())
    interval = stats.t.ppf(0.975, n - 2) * s_err * leverage
    return y_mean + slope * (target - t_mean), interval


def test_linear_forecast_matches_the_slow_way_per_track():
    rng = np.random.default_rng(1)
    times = np.stack([np.arange(7.0), np.arange(3.0, 10.0)])
    values = rng.normal(size=(2, 7, 3)) + times[..., None] * np.array([0.5, -1.0, 0.1])
    valid = np.ones((2, 7), dtype=bool)
    valid[1, :3] = False
    target = np.array([8.0, 12.0])
    ridge = np.array([1.2, 2.0, 5.0])
    prediction, interval = linear_forecast(times, values, valid, target, ridge)
    for k in range(2):
        for c in range(3):
            expected = reference_forecast(times[k][valid[k]], values[k][valid[k], c], target[k], ridge[c])
            assert prediction[k, c] == pytest.approx(expected[0], rel=1e-9)
            assert interval[k, c] == pytest.approx(expected[1], rel=1e-9)


def test_forecast_of_a_new_track_is_its_position_with_unknown_uncertainty():
    times = np.zeros((1, 7))
    values = np.zeros((1, 7, 3))
    valid = np.zeros((1, 7), dtype=bool)
    valid[0, -1] = True
    values[0, -1] = (0.3, 0.4, 2.0)
    prediction, interval = linear_forecast(times, values, valid, np.array([5.0]), np.ones(3))
    np.testing.assert_allclose(prediction[0], [0.3, 0.4, 2.0])
    assert np.isinf(interval).all()


def track_cues(**kw) -> TrackCues:
    base = dict(
        point=np.array([[0.5, 0.5]]),
        point_interval=np.array([[0.01, 0.02]]),
        log_depth=np.array([3.0]),
        depth_interval=np.array([0.1]),
    )
    base.update(kw)
    return TrackCues(**base)


def test_cost_is_phalps_product():
    cost = PhalpCost()
    tracks = track_cues(pose=np.zeros((1, 4)))
    dets = Cues(point=np.array([[0.52, 0.49]]), log_depth=np.array([3.2]), pose=np.full((1, 4), 0.5))
    appearance = np.array([[0.3]])
    d_l, s_l = math.hypot(0.02, 0.01), math.hypot(0.01, 0.02)
    d_n, s_n = 0.2, 0.1
    expected = (
        (1 + 4.0536 * 0.3)
        * (1 + 1.3070 * min(4 * 0.25, 1.5))
        * math.exp(d_l / ((0.1 + math.tanh(s_l)) * 0.3792))
        * math.exp(d_n / ((0.1 + math.tanh(s_n)) * 4.1658))
    )
    assert cost(tracks, dets, appearance)[0, 0] == pytest.approx(expected, rel=1e-9)


def test_missing_cues_drop_out_of_the_product():
    cost = PhalpCost()
    dets = Cues(point=np.array([[0.52, 0.49], [0.9, 0.9]]), log_depth=np.array([3.2, np.nan]))
    with_all = cost(track_cues(), dets, np.array([[np.nan, 0.2]]))
    location_only = cost(track_cues(), Cues(point=dets.point), None)
    assert with_all[0, 1] == pytest.approx(location_only[0, 1] * (1 + 4.0536 * 0.2))
    depth_term = math.exp(0.2 / ((0.1 + math.tanh(0.1)) * 4.1658))
    assert with_all[0, 0] == pytest.approx(location_only[0, 0] * depth_term)


def test_closer_in_depth_and_pose_wins():
    cost = PhalpCost()
    dets = Cues(point=np.array([[0.5, 0.5], [0.5, 0.5]]), log_depth=np.array([3.0, 3.5]))
    c = cost(track_cues(), dets, None)
    assert c[0, 0] < c[0, 1]


def test_tracker_with_phalp_cost_keeps_identities_on_cues():
    tracker = Tracker(ScoreThresholds(0.5, 0.1, 0.5), n_init=1, cost=PhalpCost())
    for frame in range(1, 12):
        boxes = np.array([[100 + 2 * frame, 100, 130 + 2 * frame, 180], [300 - 2 * frame, 100, 330 - 2 * frame, 180]])
        dets = Detections(boxes, [0.9, 0.9])
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 / 640
        matched = tracker.associate(dets, frame, Cues(point=centre, log_depth=np.log([5.0, 8.0])))
    by_det = dict(zip(matched.tolist(), [track.track_id for track in tracker.tracks]))
    assert by_det == {0: 1, 1: 2}
