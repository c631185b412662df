"""The association step of one frame: predict, cost, assign in stages, update lifecycles."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.detection.base import Detections, ScoreThresholds
from tracker.assign import assign
from tracker.cost import location_cost
from tracker.errors import InputError
from tracker.predict import BoxKalmanFilter, cxcywh_to_xyxy
from tracker.track import Track, TrackState


@dataclass
class TrackedFrame:
    """Tracks alive after one frame (K rows); `det_index` is the matched detection or −1."""

    frame: int
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    states: np.ndarray
    det_index: np.ndarray

    def __len__(self) -> int:
        return len(self.track_ids)


class Tracker:
    """Multi-person tracker in the ByteTrack mould, with the cost function as its extension point.

    Stage 1 matches confirmed and lost tracks to confident detections; stage 2 gives the confirmed tracks left
    over a chance at low-score detections (occluded people score low); stage 3 matches tentative tracks to the
    confident detections left. Unmatched confident detections start tentative tracks.
    """

    def __init__(
        self,
        thresholds: ScoreThresholds,
        n_init: int = 3,
        max_age: int = 30,
        max_cost: float = 0.8,
        max_cost_low: float = 0.5,
        max_cost_tentative: float = 0.7,
        measurement_noise: float = 0.05,
        position_noise: float = 0.05,
        velocity_noise: float = 1 / 160,
    ) -> None:
        _check_number("tracker.n_init", n_init, int, 1)
        _check_number("tracker.max_age", max_age, int, 0)
        for name, value in [("max_cost", max_cost), ("max_cost_low", max_cost_low), ("max_cost_tentative", max_cost_tentative)]:
            _check_number(f"tracker.{name}", value, float, 0.0)
        for name, value in [("measurement_noise", measurement_noise), ("position_noise", position_noise), ("velocity_noise", velocity_noise)]:
            _check_number(f"tracker.{name}", value, float, 1e-9)
        self.thresholds = thresholds
        self.n_init, self.max_age = n_init, max_age
        self.max_cost, self.max_cost_low, self.max_cost_tentative = max_cost, max_cost_low, max_cost_tentative
        self.kalman = BoxKalmanFilter(measurement_noise, position_noise, velocity_noise)
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, detections: Detections, frame: int) -> TrackedFrame:
        """Advance all tracks by one frame given its detections; returns every live track."""
        self._predict()
        scores, thresholds = detections.scores, self.thresholds
        high = np.flatnonzero(scores >= thresholds.high)
        low = np.flatnonzero((scores >= thresholds.low) & (scores < thresholds.high))
        matched_det = np.full(len(self.tracks), -1, dtype=np.int64)

        active = [i for i, t in enumerate(self.tracks) if t.state is not TrackState.TENTATIVE]
        high_left = self._match(active, high, detections, self.max_cost, matched_det)
        confirmed_left = [i for i in active if matched_det[i] < 0 and self.tracks[i].state is TrackState.CONFIRMED]
        self._match(confirmed_left, low, detections, self.max_cost_low, matched_det)
        tentative = [i for i, t in enumerate(self.tracks) if t.state is TrackState.TENTATIVE]
        high_left = self._match(tentative, high_left, detections, self.max_cost_tentative, matched_det)

        kept = self._apply(matched_det, detections)
        new = high_left[scores[high_left] >= thresholds.new_track]
        self._start_tracks(detections, new)
        return self._snapshot(frame, np.concatenate([matched_det[kept], new]))

    def _predict(self) -> None:
        if not self.tracks:
            return
        mean, cov = self.kalman.predict(
            np.stack([t.mean for t in self.tracks]), np.stack([t.cov for t in self.tracks])
        )
        for track, m, c in zip(self.tracks, mean, cov):
            track.mean, track.cov = m, c
            track.frames_since_update += 1

    def _match(
        self, track_rows: list[int], det_rows: np.ndarray, detections: Detections, max_cost: float, out: np.ndarray
    ) -> np.ndarray:
        """Assigns `det_rows` to `track_rows` (writing into `out`); returns the detection rows left unmatched."""
        if not track_rows or len(det_rows) == 0:
            return det_rows
        predicted = cxcywh_to_xyxy(np.stack([self.tracks[i].mean[:4] for i in track_rows]))
        cost = location_cost(predicted, detections.boxes[det_rows])
        matches, _, unmatched = assign(cost, max_cost)
        out[np.asarray(track_rows)[matches[:, 0]]] = det_rows[matches[:, 1]]
        return det_rows[unmatched]

    def _apply(self, matched_det: np.ndarray, detections: Detections) -> np.ndarray:
        """Updates matched tracks, ages the others, drops the deleted; returns the mask of tracks kept."""
        hit = np.flatnonzero(matched_det >= 0)
        if len(hit):
            boxes = detections.boxes[matched_det[hit]]
            mean, cov = self.kalman.update(
                np.stack([self.tracks[i].mean for i in hit]), np.stack([self.tracks[i].cov for i in hit]), boxes
            )
            for row, i in enumerate(hit):
                self.tracks[i].mark_hit(mean[row], cov[row], float(detections.scores[matched_det[i]]), self.n_init)
        for i in np.flatnonzero(matched_det < 0):
            self.tracks[i].mark_missed(self.max_age)
        kept = np.array([t.state is not TrackState.DELETED for t in self.tracks], dtype=bool)
        self.tracks = [t for t, k in zip(self.tracks, kept) if k]
        return kept

    def _start_tracks(self, detections: Detections, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        mean, cov = self.kalman.initiate(detections.boxes[rows])
        for m, c, row in zip(mean, cov, rows):
            self.tracks.append(Track(self._next_id, m, c, float(detections.scores[row])))
            self._next_id += 1

    def _snapshot(self, frame: int, det_index: np.ndarray) -> TrackedFrame:
        tracks = self.tracks
        boxes = cxcywh_to_xyxy(np.stack([t.mean[:4] for t in tracks])) if tracks else np.zeros((0, 4))
        return TrackedFrame(
            frame=frame,
            track_ids=np.array([t.track_id for t in tracks], dtype=np.int64),
            boxes=boxes.astype(np.float32),
            scores=np.array([t.score for t in tracks], dtype=np.float32),
            states=np.array([t.state.value for t in tracks]),
            det_index=det_index,
        )


def _check_number(key: str, value: object, kind: type, least: float) -> None:
    """Rejects a configuration value of the wrong type or below `least`, naming the key."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (kind is int and not isinstance(value, int)) or value < least:
        raise InputError(f"{key} must be {'an integer' if kind is int else 'a number'} ≥ {least:g}, got {value!r}.")
