"""Re-identification of lost tracks beyond the box-overlap gate: where the person could be now, and who looks alike.

A track lost for a few frames (hidden behind a sign or a passer-by) has a Kalman box that no longer overlaps the
person when they reappear. This stage gates each lost track's pairs by PHALP's linear forecast of its image
position, whose 95% prediction interval grows with the time it has been lost (plus a floor of `min_radius` body
heights), by the change of box height, and by appearance, which must be known and within `max_appearance`; it
ranks the pairs left by appearance distance plus `location_weight` times the forecast distance in units of the
gate. Without an appearance memory the stage matches nothing: position alone is not evidence enough after a gap.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.structures import InputError
from tracker.features import Cues, TrackCues


@dataclass(frozen=True)
class Reidentification:
    """Gates and ranking of the re-identification stage (configs/tracker/*.yaml, key `reid`)."""

    max_appearance: float
    max_gap: int = 30
    min_radius: float = 0.5
    interval_scale: float = 1.0
    max_scale_change: float = 0.3
    location_weight: float = 0.5

    def __post_init__(self) -> None:
        if not self.max_appearance >= 0 or self.max_gap < 1 or self.min_radius < 0 or self.interval_scale < 0:
            raise InputError(
                "tracker.reid needs max_appearance >= 0, max_gap >= 1, min_radius >= 0 and interval_scale >= 0, "
                f"got {self.max_appearance}, {self.max_gap}, {self.min_radius} and {self.interval_scale}."
            )

    def cost(
        self,
        forecast: TrackCues,
        detections: Cues,
        track_heights: np.ndarray,
        detection_heights: np.ndarray,
        appearance: np.ndarray | None,
    ) -> np.ndarray:
        """T×D costs (inf: never) of tracks (their forecast and box heights T, in the units of the cues' points:
        the frame's longer side) against detections (their cues and box heights D)."""
        shape = (len(track_heights), len(detection_heights))
        if appearance is None:
            return np.full(shape, np.inf)
        distance = np.linalg.norm(forecast.point[:, None, :] - detections.point[None, :, :], axis=2)
        interval = np.linalg.norm(np.nan_to_num(forecast.point_interval, nan=np.inf, posinf=np.inf), axis=1)
        radius = self.min_radius * track_heights + self.interval_scale * np.where(np.isfinite(interval), interval, 0.0)
        scale_change = np.abs(np.log(detection_heights[None, :] / track_heights[:, None]))
        allowed = (
            (distance <= radius[:, None])
            & (scale_change <= self.max_scale_change)
            & np.isfinite(appearance)
            & (appearance <= self.max_appearance)
        )
        ranked = appearance + self.location_weight * distance / radius[:, None]
        return np.where(allowed, ranked, np.inf)
