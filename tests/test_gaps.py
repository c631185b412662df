"""Gap filling and back-fill between the tracker and the writers: interpolated boxes and bodies, bounded delay."""
import numpy as np
from scipy.spatial.transform import Rotation

from models.structures import BodyArrays, Frame
from tracker.gaps import INTERPOLATED, GapFiller
from tracker.tracker import TrackedFrame

IMAGE = np.zeros((8, 8, 3), np.uint8)


def bodies(yaw_degrees: float | None, x: float) -> BodyArrays:
    """One body turned by `yaw_degrees` about y at cam_t x (None: no body)."""
    posed = yaw_degrees is not None
    orient = Rotation.from_euler("y", yaw_degrees or 0.0, degrees=True).as_matrix().astype(np.float32)
    nan = np.float32(np.nan)
    return BodyArrays(
        smpl_global_orient=orient[None, None] if posed else np.full((1, 1, 3, 3), nan),
        smpl_body_pose=np.tile(np.eye(3, dtype=np.float32), (1, 23, 1, 1)) if posed else np.full((1, 23, 3, 3), nan),
        smpl_betas=np.zeros((1, 10), np.float32) if posed else np.full((1, 10), nan),
        cam_t=np.array([[x, 0.0, 10.0]], np.float32) if posed else np.full((1, 3), nan),
        focal_length=np.array([1000.0], np.float32) if posed else np.full(1, nan),
        joints_3d=np.full((1, 24, 3), x, np.float32) if posed else np.full((1, 24, 3), nan),
        joints_2d=np.full((1, 24, 2), x, np.float32) if posed else np.full((1, 24, 2), nan),
        has_pose=np.array([posed]),
    )


def frame(index: int, state: str, matched: bool, x: float, yaw: float | None = None) -> TrackedFrame:
    """Track 5 alone in frame `index`, its box at x."""
    return TrackedFrame(
        frame=Frame(index, index / 10, IMAGE),
        track_ids=np.array([5]),
        boxes=np.array([[x, 0.0, x + 10.0, 30.0]], np.float32),
        scores=np.ones(1, np.float32),
        states=np.array([state]),
        det_index=np.array([0 if matched else -1]),
        bodies=bodies(yaw if matched else None, x),
    )


def run(filler: GapFiller, frames: list[TrackedFrame]) -> list[TrackedFrame]:
    out = []
    for tracked in frames:
        out += filler.push(tracked)
    return out + list(filler.flush())


def test_a_short_gap_is_interpolated_box_and_body():
    frames = [frame(1, "confirmed", True, 0.0, yaw=0.0)]
    frames += [frame(i, "lost", False, 99.0) for i in (2, 3, 4)]
    frames += [frame(5, "confirmed", True, 40.0, yaw=80.0)]
    out = run(GapFiller(max_gap=5), frames)
    assert [f.states[0] for f in out] == ["confirmed", INTERPOLATED, INTERPOLATED, INTERPOLATED, "confirmed"]
    np.testing.assert_allclose([f.boxes[0, 0] for f in out], [0, 10, 20, 30, 40])
    middle = out[2].bodies
    assert middle.has_pose[0]
    np.testing.assert_allclose(middle.cam_t[0], [20.0, 0.0, 10.0])
    yaw = Rotation.from_matrix(middle.smpl_global_orient[0, 0]).as_euler("yxz", degrees=True)[0]
    assert abs(yaw - 40.0) < 1e-3  # half way along the shortest arc, not an average of matrix entries


def test_gaps_longer_than_max_gap_stay_lost_and_outputs_wait_max_gap_frames():
    frames = [frame(1, "confirmed", True, 0.0, yaw=0.0)]
    frames += [frame(i, "lost", False, 99.0) for i in range(2, 6)]
    frames += [frame(6, "confirmed", True, 50.0, yaw=0.0)]
    filler = GapFiller(max_gap=3)
    released = [len(filler.push(tracked)) for tracked in frames]
    assert released == [0, 0, 0, 1, 1, 1]  # the delay line holds max_gap frames
    out = run(GapFiller(max_gap=3), frames)
    assert [f.states[0] for f in out[1:5]] == ["lost"] * 4
    assert all(f.boxes[0, 0] == 99.0 for f in out[1:5])


def test_tentative_rows_are_back_filled_when_the_track_is_confirmed():
    frames = [frame(1, "tentative", True, 0.0, 0.0), frame(2, "tentative", True, 1.0, 0.0)]
    frames += [frame(3, "confirmed", True, 2.0, 0.0)]
    assert [f.states[0] for f in run(GapFiller(max_gap=2), frames)] == ["confirmed"] * 3
    assert [f.states[0] for f in run(GapFiller(max_gap=2, backfill=False), frames)] == ["tentative"] * 2 + ["confirmed"]
    # A tentative track that dies is never back-filled.
    dying = [frame(1, "tentative", True, 0.0, 0.0), frame(2, "tentative", True, 1.0, 0.0)]
    assert [f.states[0] for f in run(GapFiller(max_gap=2), dying)] == ["tentative"] * 2


def test_zero_gap_passes_frames_through():
    frames = [frame(1, "confirmed", True, 0.0, 0.0), frame(2, "lost", False, 5.0), frame(3, "confirmed", True, 8, 0)]
    filler = GapFiller(max_gap=0)
    assert [len(filler.push(f)) for f in frames] == [1, 1, 1]
