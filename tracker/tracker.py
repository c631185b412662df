"""The association step of one frame: predict, cost, assign in stages, update lifecycles."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models.structures import (
    BodyArrays,
    Detections,
    Frame,
    InputError,
    Observations,
    ScoreThresholds,
    cxcywh_to_xyxy,
)
from tracker.appearance import AppearanceMemory
from tracker.assign import assign
from tracker.cost import PhalpCost, location_cost
from tracker.features import CueHistory, Cues, TrackCues, detection_cues
from tracker.predict import BoxKalmanFilter, linear_forecast
from tracker.reid import Reidentification
from tracker.schema import CUT_KEY, frame_record
from tracker.track import Track, TrackState


@dataclass
class TrackedFrame:
    """Tracks alive after one frame (K rows): ids, Kalman boxes (xyxy), last matched scores, states, and
    `det_index`, the detection each track matched this frame (−1: none). `bodies` (per-track rows of the matched
    detections' bodies, body-less rows for the others) and `vertices` (K×V×3 posed meshes, NaN rows for the
    others) are set when the observations had them; `cut` is True when the frame starts a new shot."""

    frame: Frame
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    states: np.ndarray
    det_index: np.ndarray
    bodies: BodyArrays | None = None
    vertices: torch.Tensor | None = None
    cut: bool = False

    def __len__(self) -> int:
        return len(self.track_ids)

    def record(self) -> dict:
        """This frame's results record (tracker.schema)."""
        return frame_record(
            self.frame.index, self.frame.time, self.track_ids, self.boxes, self.scores, self.states, self.bodies,
            self.cut,
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any], frame: Frame) -> TrackedFrame:
        """A frame read back from its results record: which detection a track matched is not stored (−1), nor are
        the meshes (posed again from the SMPL parameters when needed)."""
        track_ids = np.asarray(record["track_ids"])
        return cls(
            frame=frame,
            track_ids=track_ids,
            boxes=np.asarray(record["boxes"]),
            scores=np.asarray(record["scores"]),
            states=np.asarray(record["states"]),
            det_index=np.full(len(track_ids), -1, dtype=np.int64),
            bodies=BodyArrays.from_arrays(record),
            cut=bool(record.get(CUT_KEY, False)),
        )


class Tracker:
    """Multi-person tracker in the ByteTrack mould, with PHALP's cues as its extension points.

    Stage 1 matches confirmed and lost tracks to confident detections among the pairs the Kalman box overlap allows
    (ranked by PHALP's cost when one is configured); a re-identification stage then lets tracks lost for a while
    take confident detections that the overlap rejects, gated by their forecast location and ranked by appearance;
    stage 2 gives the confirmed tracks left over a chance at weak detections (occluded people score low); stage 3
    matches tentative tracks to the confident detections left. Unmatched confident detections start tentative
    tracks. With an appearance memory, pairs that look too different (`appearance_gate`) are never matched in any
    stage. At a shot change (a cut) positions mean nothing: tracks of the earlier shot are matched by appearance
    alone, and a track matched across the cut starts its motion afresh.
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
        cost: PhalpCost | None = None,
        appearance: AppearanceMemory | None = None,
        appearance_gate: float | None = None,
        reid: Reidentification | None = None,
        history: int = 7,
        forecast_ridge: tuple[float, float, float] = (1.2, 2.0, 5.0),
    ) -> None:
        _check_number("tracker.n_init", n_init, int, 1)
        _check_number("tracker.max_age", max_age, int, 0)
        gates = {"max_cost": max_cost, "max_cost_low": max_cost_low, "max_cost_tentative": max_cost_tentative}
        for name, value in gates.items():
            _check_number(f"tracker.{name}", value, float, 0.0)
        noises = {
            "measurement_noise": measurement_noise,
            "position_noise": position_noise,
            "velocity_noise": velocity_noise,
        }
        for name, value in noises.items():
            _check_number(f"tracker.{name}", value, float, 1e-9)
        if appearance_gate is not None:
            _check_number("tracker.appearance_gate", appearance_gate, float, 0.0)
        self.thresholds = thresholds
        self.n_init, self.max_age = n_init, max_age
        self.max_cost, self.max_cost_low, self.max_cost_tentative = max_cost, max_cost_low, max_cost_tentative
        self.kalman = BoxKalmanFilter(measurement_noise, position_noise, velocity_noise)
        self.cost = cost
        self.appearance = appearance
        self.appearance_gate = appearance_gate
        self.reid = reid
        self.history = history
        self.forecast_ridge = np.asarray(forecast_ridge, dtype=np.float64)
        self.tracks: list[Track] = []
        self._next_id = 1
        self._shot = 0

    def state_dict(self) -> dict:
        """What changes as frames are tracked (tracks, next id, shot count, appearance memories), as plain values
        and numpy arrays (for a checkpoint); the settings come from the configuration."""
        return {
            "tracks": [track.state_dict() for track in self.tracks],
            "next_id": self._next_id,
            "shot": self._shot,
            "appearance": None if self.appearance is None else self.appearance.state_dict(),
        }

    def load_state_dict(self, state: dict, device: str | torch.device = "cpu") -> None:
        """Restores what `state_dict` returned (appearance memories on `device`)."""
        self.tracks = [Track.from_state_dict(track) for track in state["tracks"]]
        self._next_id, self._shot = int(state["next_id"]), int(state["shot"])
        if self.appearance is not None:
            self.appearance.load_state_dict(state["appearance"], device)

    def update(self, observations: Observations) -> TrackedFrame:
        """Advance all tracks by one frame given its detections and what the model stages found of them; returns
        every live track with the body and mesh of the detection it matched."""
        cues = detection_cues(observations)
        matched = self.associate(observations.detections, observations.frame.index, cues, observations.cut)
        return self._snapshot(observations, matched)

    def associate(self, detections: Detections, frame: int, cues: Cues, cut: bool = False) -> np.ndarray:
        """The association step on given cues (`cut`: this frame starts a new shot): predict, match in stages,
        update lifecycles, start tracks. Returns, for each live track in `self.tracks` order, the detection it
        matched this frame (−1: none)."""
        self._shot += int(cut)
        self._predict()
        appearance = self._appearance_distance(cues)
        iou = self._iou_cost(detections)
        first = iou if self.cost is None else self._phalp_cost(detections, cues, frame, iou, appearance)
        first, iou = self._appearance_gated(first, appearance), self._appearance_gated(iou, appearance)
        scores, thresholds = detections.scores, self.thresholds
        high = np.flatnonzero(scores >= thresholds.high)
        low = np.flatnonzero((scores >= thresholds.low) & (scores < thresholds.high))
        matched_det = np.full(len(self.tracks), -1, dtype=np.int64)
        moved = np.zeros(len(self.tracks), dtype=bool)  # matched without motion: their Kalman state restarts

        active = [i for i, t in enumerate(self.tracks) if t.state is not TrackState.TENTATIVE]
        high_left = self._match(active, high, first, matched_det)
        earlier_shot = [i for i in active if matched_det[i] < 0 and self.tracks[i].shot != self._shot]
        if earlier_shot and appearance is not None:
            before = matched_det.copy()
            high_left = self._match(earlier_shot, high_left, self._across_cut_cost(appearance), matched_det)
            moved |= matched_det != before
        if self.reid is not None and len(high_left):
            lost = [i for i in active if matched_det[i] < 0 and self.tracks[i].shot == self._shot]
            lost = [i for i in lost if 1 <= self.tracks[i].frames_since_update <= self.reid.max_gap + 1]
            if lost:
                before = matched_det.copy()
                heights = (self._heights() / cues.scale, (detections.boxes[:, 3] - detections.boxes[:, 1]) / cues.scale)
                cost = self.reid.cost(self._forecast(frame), cues, *heights, appearance)
                high_left = self._match(lost, high_left, cost, matched_det)
                moved |= matched_det != before
        confirmed_left = [i for i in active if matched_det[i] < 0 and self.tracks[i].state is TrackState.CONFIRMED]
        self._match(confirmed_left, low, self._gated(iou, self.max_cost_low), matched_det)
        tentative = [i for i, t in enumerate(self.tracks) if t.state is TrackState.TENTATIVE]
        high_left = self._match(tentative, high_left, self._gated(iou, self.max_cost_tentative), matched_det)

        kept = self._apply(matched_det, moved, detections, frame, cues)
        new = high_left[scores[high_left] >= thresholds.new_track]
        self._start_tracks(detections, new, frame, cues)
        return np.concatenate([matched_det[kept], new])

    def _predict(self) -> None:
        if not self.tracks:
            return
        mean, cov = self.kalman.predict(
            np.stack([t.mean for t in self.tracks]), np.stack([t.cov for t in self.tracks])
        )
        for track, m, c in zip(self.tracks, mean, cov):
            track.mean, track.cov = m, c
            track.frames_since_update += 1

    def _iou_cost(self, detections: Detections) -> np.ndarray:
        """1 − IoU of every track's predicted box with every detection (T×D), gated at `max_cost`; tracks of an
        earlier shot have no meaningful box and get no pair."""
        if not self.tracks:
            return np.zeros((0, len(detections)))
        predicted = cxcywh_to_xyxy(np.stack([t.mean[:4] for t in self.tracks]))
        cost = self._gated(location_cost(predicted, detections.boxes), self.max_cost)
        cost[[t.shot != self._shot for t in self.tracks]] = np.inf
        return cost

    def _appearance_distance(self, cues: Cues) -> np.ndarray | None:
        """T×D appearance distances of the tracks' memories to the detections (NaN: unknown), or None."""
        if self.appearance is None or cues.appearance is None or not self.tracks:
            return None
        return self.appearance.distance([t.track_id for t in self.tracks], cues.appearance)

    def _appearance_gated(self, cost: np.ndarray, appearance: np.ndarray | None) -> np.ndarray:
        """`cost` with the pairs that look too different (distance above `appearance_gate`) made impossible."""
        if appearance is None or self.appearance_gate is None:
            return cost
        return np.where(np.nan_to_num(appearance, nan=0.0) > self.appearance_gate, np.inf, cost)

    def _across_cut_cost(self, appearance: np.ndarray) -> np.ndarray:
        """Tracks of an earlier shot against this frame's detections: appearance alone, within the gate."""
        gate = self.appearance_gate if self.appearance_gate is not None else np.inf
        return np.where(np.isfinite(appearance) & (appearance <= gate), appearance, np.inf)

    def _heights(self) -> np.ndarray:
        """Each track's box height (pixels, at least 1) from its Kalman state."""
        return np.maximum(np.array([t.mean[3] for t in self.tracks]), 1.0)

    def _phalp_cost(
        self, detections: Detections, cues: Cues, frame: int, iou: np.ndarray, appearance: np.ndarray | None
    ) -> np.ndarray:
        """log of PHALP's cost for every track and detection (T×D), among the pairs the motion gate (`iou`,
        the Kalman box overlap) allows and gated again at log(cost.max_cost): motion rules out the impossible,
        PHALP's cues rank what is left."""
        if not self.tracks:
            return np.zeros((0, len(detections)))
        cost = self.cost(self._forecast(frame), cues, appearance)
        return np.where(np.isfinite(iou) & (cost <= self.cost.max_cost), np.log(cost), np.inf)

    @staticmethod
    def _gated(cost: np.ndarray, max_cost: float) -> np.ndarray:
        return np.where(cost <= max_cost, cost, np.inf)

    def _forecast(self, frame: int) -> TrackCues:
        """Every track's forecast position and depth at `frame` (PHALP's linear forecast), last pose."""
        histories = [t.history for t in self.tracks]
        values = np.stack([h.values for h in histories])
        prediction, interval = linear_forecast(
            np.stack([h.times for h in histories]),
            values,
            np.stack([h.valid for h in histories]),
            np.full(len(histories), float(frame)),
            self.forecast_ridge,
        )
        poses = [t.pose for t in self.tracks]
        pose = None
        if any(p is not None for p in poses):
            size = next(len(p) for p in poses if p is not None)
            pose = np.stack([np.full(size, np.nan) if p is None else p for p in poses])
        return TrackCues(prediction[:, :2], interval[:, :2], prediction[:, 2], interval[:, 2], pose=pose)

    def _match(self, track_rows: list[int], det_rows: np.ndarray, cost: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Assigns `det_rows` to `track_rows` on the rows/columns of a gated cost (inf = never), writing into
        `out`; returns the detection rows left unmatched."""
        if not track_rows or len(det_rows) == 0:
            return det_rows
        matches, _, unmatched = assign(cost[np.ix_(track_rows, det_rows)])
        out[np.asarray(track_rows)[matches[:, 0]]] = det_rows[matches[:, 1]]
        return det_rows[unmatched]

    def _apply(
        self, matched_det: np.ndarray, moved: np.ndarray, detections: Detections, frame: int, cues: Cues
    ) -> np.ndarray:
        """Updates matched tracks (those matched without motion, `moved`, restart their Kalman state and location
        history at the detection), ages the others, drops the deleted; returns the mask of tracks kept."""
        hit = np.flatnonzero(matched_det >= 0)
        hit_ids = [self.tracks[i].track_id for i in hit]
        if len(hit):
            boxes = detections.boxes[matched_det[hit]]
            mean, cov = self.kalman.update(
                np.stack([self.tracks[i].mean for i in hit]), np.stack([self.tracks[i].cov for i in hit]), boxes
            )
            fresh_mean, fresh_cov = self.kalman.initiate(boxes)
            for row, i in enumerate(hit):
                track, det = self.tracks[i], matched_det[i]
                if moved[i]:
                    mean[row], cov[row] = fresh_mean[row], fresh_cov[row]
                    track.history = CueHistory.empty(self.history)
                track.shot = self._shot
                track.mark_hit(mean[row], cov[row], float(detections.scores[det]), self.n_init)
                track.observe(frame, *cues.observation(det))
        for i in np.flatnonzero(matched_det < 0):
            self.tracks[i].mark_missed(self.max_age)
        kept = np.array([t.state is not TrackState.DELETED for t in self.tracks], dtype=bool)
        self.tracks = [t for t, k in zip(self.tracks, kept) if k]
        if self.appearance is not None:
            self.appearance.keep([t.track_id for t in self.tracks])
            if cues.appearance is not None:
                self._remember(hit_ids, matched_det[hit], cues)
        return kept

    def _remember(self, track_ids: list[int], rows: np.ndarray, cues: Cues) -> None:
        """Folds the matched detections' appearance (and textures, when they exist) into the tracks' memories."""
        index = torch.as_tensor(rows, dtype=torch.long)
        textures = None if cues.texture is None else cues.texture[index]
        self.appearance.observe(track_ids, cues.appearance[index], textures)

    def _start_tracks(self, detections: Detections, rows: np.ndarray, frame: int, cues: Cues) -> None:
        if len(rows) == 0:
            return
        mean, cov = self.kalman.initiate(detections.boxes[rows])
        for m, c, row in zip(mean, cov, rows):
            track = Track(self._next_id, m, c, float(detections.scores[row]), history=CueHistory.empty(self.history))
            track.shot = self._shot
            track.observe(frame, *cues.observation(row))
            self.tracks.append(track)
            self._next_id += 1
        if self.appearance is not None and cues.appearance is not None:
            self._remember([t.track_id for t in self.tracks[-len(rows) :]], rows, cues)

    def _snapshot(self, observations: Observations, det_index: np.ndarray) -> TrackedFrame:
        tracks = self.tracks
        boxes = cxcywh_to_xyxy(np.stack([t.mean[:4] for t in tracks])) if tracks else np.zeros((0, 4))
        bodies, vertices = observations.bodies, observations.vertices
        if vertices is not None:
            vertices = torch.cat([vertices, vertices.new_full((1, *vertices.shape[1:]), float("nan"))])
            vertices = vertices[torch.as_tensor(det_index).to(vertices.device)]  # −1 takes the NaN row
        return TrackedFrame(
            frame=observations.frame,
            track_ids=np.array([t.track_id for t in tracks], dtype=np.int64),
            boxes=boxes.astype(np.float32),
            scores=np.array([t.score for t in tracks], dtype=np.float32),
            states=np.array([t.state.value for t in tracks]),
            det_index=det_index,
            bodies=None if bodies is None else bodies.take(det_index),
            vertices=vertices,
            cut=observations.cut,
        )


def _check_number(key: str, value: object, kind: type, least: float) -> None:
    """Rejects a configuration value of the wrong type or below `least`, naming the key."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (kind is int and not isinstance(value, int)) or value < least:
        raise InputError(f"{key} must be {'an integer' if kind is int else 'a number'} ≥ {least:g}, got {value!r}.")
