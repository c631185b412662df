"""One track's state and lifecycle: tentative → confirmed after `n_init` hits → lost → deleted after `max_age`."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from tracker.features import CueHistory


class TrackState(str, Enum):
    """Lifecycle stage of a track; the value is what results files store."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    DELETED = "deleted"


@dataclass
class Track:
    """A person followed over time: Kalman state (mean 8, cov 8×8), last score, lifecycle counters, the cue history
    of its recent observations, its last pose, and the shot (counted from 0 at the first frame) it was last seen in."""

    track_id: int
    mean: np.ndarray
    cov: np.ndarray
    score: float
    state: TrackState = TrackState.TENTATIVE
    hits: int = 1
    frames_since_update: int = 0
    history: CueHistory | None = None
    pose: np.ndarray | None = None
    shot: int = 0

    def state_dict(self) -> dict:
        """This track as plain values and numpy arrays (for a checkpoint)."""
        return {
            "track_id": self.track_id,
            "mean": self.mean,
            "cov": self.cov,
            "score": self.score,
            "state": self.state.value,
            "hits": self.hits,
            "frames_since_update": self.frames_since_update,
            "history": None if self.history is None else self.history.state_dict(),
            "pose": self.pose,
            "shot": self.shot,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> Track:
        """The track `state_dict` described."""
        history = state["history"]
        return cls(
            track_id=int(state["track_id"]),
            mean=np.array(state["mean"]),
            cov=np.array(state["cov"]),
            score=float(state["score"]),
            state=TrackState(state["state"]),
            hits=int(state["hits"]),
            frames_since_update=int(state["frames_since_update"]),
            history=None if history is None else CueHistory.from_state_dict(history),
            pose=None if state["pose"] is None else np.array(state["pose"]),
            shot=int(state["shot"]),
        )

    def observe(self, frame: int, point: np.ndarray, log_depth: float, pose: np.ndarray | None) -> None:
        """Records a matched detection's cues: its position and log depth (NaN: unknown) for the forecast, its pose
        vector if it has one."""
        self.history.push(frame, point, log_depth)
        if pose is not None and np.isfinite(pose).all():
            self.pose = pose

    def mark_hit(self, mean: np.ndarray, cov: np.ndarray, score: float, n_init: int) -> None:
        """Matched this frame: take the corrected state; confirm once it has `n_init` hits."""
        self.mean, self.cov, self.score = mean, cov, score
        self.hits += 1
        self.frames_since_update = 0
        if self.state is TrackState.LOST or (self.state is TrackState.TENTATIVE and self.hits >= n_init):
            self.state = TrackState.CONFIRMED

    def mark_missed(self, max_age: int) -> None:
        """Unmatched this frame: a tentative track dies at once, a confirmed one is lost until `max_age`."""
        if self.state is TrackState.TENTATIVE:
            self.state = TrackState.DELETED
        elif self.frames_since_update > max_age:
            self.state = TrackState.DELETED
        else:
            self.state = TrackState.LOST
