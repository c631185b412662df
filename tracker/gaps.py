"""Continuous tracks in the outputs: a short delay line between the tracker and the writers that fills the frames a
track missed once it is found again, and shows a track's first frames once it is confirmed.

Frames wait in the buffer for `max_gap` frames before they are written. When a track is matched again after
missing at most `max_gap` frames, its rows in the missed frames (the tracker's lost rows) get boxes interpolated
linearly between the two matched boxes, and bodies interpolated where both ends have one (rotations along the
shortest arc, translations, shapes and joints linearly); their state becomes `interpolated`. When a track is
confirmed, its earlier matched rows as a tentative track become `confirmed` (PHALP back-fills them the same way).
Memory stays bounded: at most `max_gap` + 1 frames are held.
"""
from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterator

import numpy as np
from scipy.spatial.transform import Rotation

from models.structures import BodyArrays, Frame
from tracker.track import TrackState
from tracker.tracker import TrackedFrame

INTERPOLATED = "interpolated"
_ROTATIONS = ("smpl_global_orient", "smpl_body_pose")
_LINEAR = ("smpl_betas", "cam_t", "focal_length", "joints_3d", "joints_2d")


class GapFiller:
    """Delays tracked frames by `max_gap` frames to fill each track's short gaps and back-fill its tentative start.

    `push(frame)` returns the frames that leave the buffer, oldest first; `flush()` returns the rest at the end.
    `max_gap` 0 passes frames straight through.
    """

    def __init__(self, max_gap: int = 30, backfill: bool = True) -> None:
        if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
            raise ValueError(f"output.max_gap must be a whole number of frames >= 0, got {max_gap!r}.")
        self.max_gap = max_gap
        self.backfill = backfill
        self._frames: deque[TrackedFrame] = deque()

    def push(self, tracked: TrackedFrame) -> list[TrackedFrame]:
        """Adds the newest frame, fills what it completes, and returns the frames that are now final."""
        self._frames.append(_writable(tracked))
        self._fill(len(self._frames) - 1)
        ready = []
        while len(self._frames) > self.max_gap:
            ready.append(self._frames.popleft())
        return ready

    def flush(self) -> Iterator[TrackedFrame]:
        """The frames still held, oldest first (at the end of the video)."""
        while self._frames:
            yield self._frames.popleft()

    def state_dict(self) -> dict:
        """The held frames (not yet final) as plain values and arrays, for a checkpoint; their pixels and meshes are
        left out (a resumed run writes only records; its overlay is re-rendered from the results)."""
        return {"frames": [_frame_state(tracked) for tracked in self._frames]}

    def load_state_dict(self, state: dict) -> None:
        """Restores the held frames `state_dict` returned (without pixels: an empty image)."""
        self._frames = deque(_frame_from_state(frame) for frame in state["frames"])

    def _fill(self, newest: int) -> None:
        current = self._frames[newest]
        for row, track_id in enumerate(current.track_ids.tolist()):
            if current.det_index[row] < 0:
                continue
            state = current.states[row]
            rows = self._earlier_rows(track_id, newest)
            if self.backfill and state == TrackState.CONFIRMED.value:
                for position, earlier in rows:
                    frame = self._frames[position]
                    if frame.states[earlier] == TrackState.TENTATIVE.value and frame.det_index[earlier] >= 0:
                        frame.states[earlier] = TrackState.CONFIRMED.value
            missed = []
            for position, earlier in reversed(rows):
                frame = self._frames[position]
                if frame.det_index[earlier] >= 0:
                    if missed and frame.states[earlier] == TrackState.CONFIRMED.value:
                        self._interpolate((position, earlier), (newest, row), missed)
                    break
                missed.append((position, earlier))

    def _earlier_rows(self, track_id: int, newest: int) -> list[tuple[int, int]]:
        """(buffer position, row) of `track_id` in the held frames before `newest`, oldest first."""
        found = []
        for position in range(newest):
            ids = self._frames[position].track_ids
            rows = np.flatnonzero(ids == track_id)
            if len(rows):
                found.append((position, int(rows[0])))
        return found

    def _interpolate(self, start: tuple[int, int], end: tuple[int, int], missed: list[tuple[int, int]]) -> None:
        """Fills the missed rows between two matched rows of one track (positions in the buffer)."""
        first, last = self._frames[start[0]], self._frames[end[0]]
        span = last.frame.index - first.frame.index
        box0, box1 = first.boxes[start[1]], last.boxes[end[1]]
        for position, row in missed:
            frame = self._frames[position]
            weight = (frame.frame.index - first.frame.index) / span
            frame.boxes[row] = (1 - weight) * box0 + weight * box1
            frame.states[row] = INTERPOLATED
            frame.vertices = None  # the overlay poses this frame's meshes again, the filled ones included
            if frame.bodies is not None and first.bodies is not None and last.bodies is not None:
                _interpolate_body(frame.bodies, row, first.bodies, start[1], last.bodies, end[1], weight)


def _interpolate_body(
    out: BodyArrays, row: int, first: BodyArrays, first_row: int, last: BodyArrays, last_row: int, weight: float
) -> None:
    """Writes into `out[row]` the body between two posed bodies: rotations along the shortest arc, the rest
    linearly; left as it is (no body) unless both ends have a pose."""
    if not (first.has_pose[first_row] and last.has_pose[last_row]):
        return
    for name in _ROTATIONS:
        start = Rotation.from_matrix(getattr(first, name)[first_row].reshape(-1, 3, 3))
        end = Rotation.from_matrix(getattr(last, name)[last_row].reshape(-1, 3, 3))
        between = start * Rotation.from_rotvec(weight * (start.inv() * end).as_rotvec())
        getattr(out, name)[row] = between.as_matrix().reshape(getattr(out, name)[row].shape)
    for name in _LINEAR:
        start, end = getattr(first, name)[first_row], getattr(last, name)[last_row]
        getattr(out, name)[row] = (1 - weight) * start + weight * end
    out.has_pose[row] = True


def _writable(tracked: TrackedFrame) -> TrackedFrame:
    """A copy whose boxes, states and bodies can be filled in place (states widened to hold every state name)."""
    bodies = tracked.bodies
    if bodies is not None:
        bodies = BodyArrays(**{name: value.copy() for name, value in bodies.arrays().items()})
    states = np.asarray(tracked.states, dtype=f"<U{len(INTERPOLATED)}")
    return TrackedFrame(
        tracked.frame, tracked.track_ids, tracked.boxes.copy(), tracked.scores, states, tracked.det_index, bodies,
        tracked.vertices, tracked.cut,
    )


def _frame_state(tracked: TrackedFrame) -> dict:
    """One held frame as its results record plus which detection each track matched (no image, no meshes)."""
    return {**tracked.record(), "det_index": tracked.det_index}


def _frame_from_state(state: dict) -> TrackedFrame:
    """Inverse of `_frame_state`, with an empty image."""
    frame = Frame(int(state["frame"]), float(state["time"]), np.zeros((0, 0, 3), np.uint8))
    return dataclasses.replace(TrackedFrame.from_record(state, frame), det_index=np.asarray(state["det_index"]))
