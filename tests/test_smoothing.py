"""Per-track smoothing: rotations filtered as rotations (across the quaternion sign flip), never across long gaps;
the offline filters calm noise and keep what is already smooth; the run's causal hook equals the offline one-euro
and keeps joints consistent with the filtered parameters; configurations compose and bad ones are refused."""
import math

import numpy as np
import pytest
import torch
from conftest import CONFIGS
from hydra import compose, initialize_config_dir
from scipy.spatial.transform import Rotation
from synthetic_runs import write_synthetic_run

from models.body import load_body_model
from models.camera import project
from models.structures import BodyArrays, Frame, InputError
from tracker.build import build
from tracker.io import load_results
from tracker.smoothing import (
    BodySeries,
    Gaussian,
    OneEuro,
    SavitzkyGolay,
    TrackSmoother,
    bridge_gaps,
    segments,
    smooth_results,
    smooth_track,
    smoothed_records,
)
from tracker.tracker import TrackedFrame

SIZE = (320, 240)
FOCAL = 6250.0


@pytest.fixture(scope="module")
def body_model():
    return load_body_model()


def series(rotations: np.ndarray, translations: np.ndarray | None = None, steps=None, fps: float = 10.0) -> BodySeries:
    count = len(rotations)
    steps = np.arange(count) if steps is None else np.asarray(steps)
    translations = np.tile([0.5, 0.2, 200.0], (count, 1)) if translations is None else translations
    return BodySeries(steps=steps, times=steps / fps, rotations=rotations, translations=translations,
                      focal=np.full(count, FOCAL), betas=np.zeros((count, 10)))  # fmt: skip


def noisy_rotations(centre: Rotation, count: int, noise: float, seed: int = 0) -> np.ndarray:
    """count×24×3×3: `centre` for every joint, perturbed by `noise` rad."""
    rng = np.random.default_rng(seed)
    jitter = Rotation.from_rotvec(rng.normal(0, noise, (count * 24, 3)))
    rotations = Rotation.from_quat(np.tile(centre.as_quat(), (count * 24, 1))) * jitter
    return rotations.as_matrix().reshape(count, 24, 3, 3)


def angle_to(rotations: np.ndarray, centre: Rotation) -> np.ndarray:
    return (Rotation.from_matrix(rotations.reshape(-1, 3, 3)) * centre.inv()).magnitude()


@pytest.mark.parametrize("smoothing", [Gaussian(sigma=2.0), SavitzkyGolay(window=9, order=2), OneEuro(min_cutoff=0.5)])
def test_rotations_near_half_a_turn_are_filtered_on_the_rotation_group(smoothing):
    # Near 180°, q and −q alternate from frame to frame and matrix entries average to garbage; a proper filter
    # pulls the noisy rotations towards their centre and returns rotations.
    centre = Rotation.from_rotvec([math.pi - 0.02, 0.0, 0.0])
    raw = noisy_rotations(centre, 60, 0.1)
    smoothed = smooth_track(series(raw), smoothing, SIZE).rotations
    assert np.allclose(smoothed @ np.swapaxes(smoothed, -1, -2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(smoothed), 1.0)
    assert angle_to(smoothed[10:-10], centre).mean() < 0.6 * angle_to(raw[10:-10], centre).mean()


@pytest.mark.parametrize("smoothing", [Gaussian(), SavitzkyGolay(), OneEuro()])
def test_a_still_body_stays_where_it_is(smoothing):
    centre = Rotation.from_rotvec([0.3, -1.0, 2.0])
    still = noisy_rotations(centre, 20, 0.0)
    out = smooth_track(series(still), smoothing, SIZE)
    assert np.allclose(out.rotations, still, atol=1e-9)
    assert np.allclose(out.translations, series(still).translations, atol=1e-9)


def test_savitzky_golay_follows_a_steady_walk_exactly():
    # A polynomial filter of order 2 leaves motion that is linear in the filter's coordinates untouched.
    count = 30
    rotations = Rotation.from_rotvec(np.outer(np.linspace(0, 1, count * 24), [0, 0, 1])).as_matrix()
    rotations = rotations.reshape(24, count, 3, 3).swapaxes(0, 1)
    depth = np.exp(np.linspace(math.log(150), math.log(250), count))
    image = np.linspace(-0.2, 0.3, count)
    translations = np.column_stack([image * depth * 320 / FOCAL, 0.1 * depth * 320 / FOCAL, depth])
    out = smooth_track(series(rotations, translations), SavitzkyGolay(window=7, order=2), SIZE)
    assert np.allclose(out.translations, translations, rtol=1e-9)
    assert angle_to(out.rotations, Rotation.identity()).max() == pytest.approx(
        angle_to(rotations, Rotation.identity()).max(), abs=1e-6
    )


def test_noise_in_depth_is_calmed():
    rng = np.random.default_rng(3)
    count = 80
    depth = 200 * np.exp(rng.normal(0, 0.05, count))
    translations = np.column_stack([0.5 * depth / 200, 0.2 * depth / 200, depth])
    raw = series(noisy_rotations(Rotation.identity(), count, 0.0), translations)
    for smoothing in (Gaussian(), SavitzkyGolay(), OneEuro()):
        out = smooth_track(raw, smoothing, SIZE).translations[:, 2]
        assert np.abs(np.diff(out, 2)).mean() < 0.5 * np.abs(np.diff(depth, 2)).mean()


def test_no_filter_reaches_across_a_long_gap():
    smoothing = Gaussian(sigma=1.0)  # reaches 3 frames
    first = noisy_rotations(Rotation.identity(), 10, 0.0)
    second = noisy_rotations(Rotation.from_rotvec([0, 1.0, 0]), 10, 0.0)
    steps = np.concatenate([np.arange(10), np.arange(14, 24)])  # 4 missing frames
    out = smooth_track(series(np.concatenate([first, second]), steps=steps), smoothing, SIZE)
    assert np.allclose(out.rotations[:10], first) and np.allclose(out.rotations[10:], second)
    close = np.concatenate([np.arange(10), np.arange(13, 23)])  # 3 missing frames: bridged, so the edges blend
    blended = smooth_track(series(np.concatenate([first, second]), steps=close), smoothing, SIZE)
    assert not np.allclose(blended.rotations[9], first[9], atol=1e-3)


def test_segments_split_only_at_gaps_wider_than_allowed():
    steps = np.array([0, 1, 2, 5, 6, 10])
    assert [piece.tolist() for piece in segments(steps, 2)] == [[0, 1, 2, 3, 4], [5]]
    assert [piece.tolist() for piece in segments(steps, 0)] == [[0, 1, 2], [3, 4], [5]]


def test_bridged_gaps_lie_on_the_shorter_arc_and_are_flagged():
    a, b = Rotation.from_rotvec([0, 0, 3.0]), Rotation.from_rotvec([0, 0, -3.0])  # 0.28 rad apart, across ±π
    rotations = np.stack([np.tile(a.as_matrix(), (24, 1, 1)), np.tile(b.as_matrix(), (24, 1, 1))])
    filled, observed = bridge_gaps(series(rotations, steps=[0, 2]))
    assert observed.tolist() == [True, False, True]
    middle = Rotation.from_matrix(filled.rotations[1, 0])
    assert (middle * Rotation.from_rotvec([0, 0, math.pi]).inv()).magnitude() < 1e-6


@pytest.mark.parametrize("bad", [{"window": 4}, {"window": 5, "order": 5}])
def test_bad_savitzky_golay_settings_are_one_sentence(bad):
    with pytest.raises(InputError, match="smooth"):
        SavitzkyGolay(**bad)


@pytest.mark.parametrize("bad", [{"min_cutoff": 0}, {"beta_rotation": -1}, {"max_gap": 1.5}])
def test_bad_one_euro_settings_are_one_sentence(bad):
    with pytest.raises(InputError, match="smooth"):
        OneEuro(**bad)


@pytest.mark.parametrize("choice, kind", [("one_euro", OneEuro), ("gaussian", Gaussian), ("savgol", SavitzkyGolay)])
def test_smoothing_configs_compose_into_filters(choice, kind):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        track = compose("track", overrides=[f"smooth={choice}"])
        default = compose("track")
        export = compose("export")
        none = compose("export", overrides=["smooth=none"])
    assert isinstance(build(track.smooth), kind)
    assert default.smooth is None and none.smooth is None
    assert isinstance(build(export.smooth), Gaussian)


def frames_of(results) -> list[TrackedFrame]:
    image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    return [
        TrackedFrame(frame=Frame(record["frame"], record["time"], image), track_ids=record["track_ids"],
                     boxes=record["boxes"], scores=record["scores"], states=record["states"],
                     det_index=np.full(len(record["track_ids"]), -1), bodies=BodyArrays.from_arrays(record),
                     vertices=torch.zeros(len(record["track_ids"]), 3, 3))  # fmt: skip
        for record in results.frames()
    ]


def test_the_runs_hook_equals_the_offline_one_euro_and_keeps_joints_consistent(tmp_path, body_model):
    run = write_synthetic_run(tmp_path, body_model)
    results = load_results(run.folder)
    smoothing = OneEuro(min_cutoff=0.7)
    offline = list(smoothed_records(results, smooth_results(results, smoothing, body_model)))
    smoother = TrackSmoother(smoothing, body_model)
    changed = 0
    for tracked, expected, original in zip(frames_of(results), offline, results.frames()):
        out = smoother.apply(tracked)
        assert out.vertices is None and tracked.vertices is not None  # re-posed later; the input is untouched
        bodies = out.bodies
        for key in ("smpl_global_orient", "smpl_body_pose", "cam_t", "joints_3d", "joints_2d"):
            assert np.allclose(getattr(bodies, key), expected[key], equal_nan=True, rtol=1e-5, atol=1e-5), key
        posed = bodies.has_pose & np.isfinite(bodies.cam_t).all(axis=1)
        unposed = ~bodies.has_pose
        assert np.array_equal(bodies.joints_3d[unposed], original["joints_3d"][unposed], equal_nan=True)
        if posed.any():
            rotations = torch.as_tensor(np.concatenate([bodies.smpl_global_orient, bodies.smpl_body_pose], 1)[posed])
            translation = torch.as_tensor(bodies.cam_t[posed])
            joints = body_model.joints(rotations[:, :1], rotations[:, 1:], torch.as_tensor(bodies.smpl_betas[posed]),
                                       transl=translation)  # fmt: skip
            assert np.allclose(bodies.joints_3d[posed], joints.numpy(), atol=1e-4)
            pixels = project(joints - translation[:, None], translation, torch.as_tensor(bodies.focal_length[posed]),
                             torch.tensor([SIZE], dtype=torch.float32).expand(int(posed.sum()), 2))  # fmt: skip
            assert np.allclose(bodies.joints_2d[posed], pixels.numpy(), atol=1e-3)
            changed += int((np.abs(bodies.cam_t[posed] - original["cam_t"][posed]) > 1e-4).any())
    assert changed > 0


def test_the_run_refuses_an_offline_filter(body_model):
    with pytest.raises(InputError, match="offline"):
        TrackSmoother(Gaussian(), body_model)
