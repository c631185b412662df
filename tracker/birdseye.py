"""The tracks seen from above: where each confirmed track stood on the ground plane (tracker.ground) frame by frame,
drawn in the overlay's track colours as a PNG of all trajectories and an MP4 of people moving with their trails.

Positions are the ground points of the boxes' bottom centres in frames where the track was matched. The map shows
the ground frame (x right, y away from the camera, metres) with a 1 m grid, labels every 5 m, and the camera with
its field of view at the origin; a trajectory breaks where its track was unmatched for more than `max_gap` frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.ground import GroundPlane, box_feet_and_heads, matched_rows
from tracker.io import Results
from tracker.render import H264Writer, track_colour

SHOWN_STATE = "confirmed"
BACKGROUND = (250, 250, 248)
GRID, GRID_MAJOR, INK = (228, 228, 228), (200, 200, 200), (60, 60, 60)
CAMERA_COLOUR = (90, 90, 90)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class GroundTrack:
    """One track on the ground: the frame numbers where it was matched and its N×2 ground positions (metres)."""

    track_id: int
    frames: np.ndarray
    positions: np.ndarray


def ground_tracks(results: Results, ground: GroundPlane) -> list[GroundTrack]:
    """The confirmed tracks' ground positions in matched frames, in order of id."""
    frames: dict[int, list[int]] = {}
    positions: dict[int, list[np.ndarray]] = {}
    for record in results.frames():
        rows = np.flatnonzero(matched_rows(record) & (np.asarray(record["states"]) == SHOWN_STATE))
        feet = box_feet_and_heads(np.asarray(record["boxes"], dtype=np.float64)[rows])[0]
        for track_id, point in zip(record["track_ids"][rows].tolist(), ground.ground_points(feet)):
            if np.isfinite(point).all():
                frames.setdefault(track_id, []).append(int(record["frame"]))
                positions.setdefault(track_id, []).append(point)
    ids = sorted(frames)
    return [GroundTrack(track_id, np.asarray(frames[track_id]), np.stack(positions[track_id])) for track_id in ids]


class GroundMap:
    """A top view of the ground around the tracks and the camera: metres → pixels, and the static background."""

    def __init__(self, tracks: list[GroundTrack], ground: GroundPlane, image_size: tuple[int, int], size: int = 900):
        points = np.concatenate([track.positions for track in tracks] + [np.zeros((1, 2))])
        low, high = points.min(axis=0) - 1.5, points.max(axis=0) + 1.5
        self.scale = (size - 60) / float(max(high - low))  # pixels per metre
        self.low = low
        extent = np.ceil((high - low) * self.scale).astype(int) + 60
        self.size = (int(extent[0]), int(extent[1]))
        self.ground = ground
        self.image_size = image_size
        self.background = self._draw_background()

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """N×2 pixel positions (int) of N×2 ground points: x to the right, y (away from the camera) upwards."""
        x = (points[:, 0] - self.low[0]) * self.scale + 30
        y = self.size[1] - 30 - (points[:, 1] - self.low[1]) * self.scale
        return np.round(np.stack([x, y], axis=1)).astype(np.int32)

    def _draw_background(self) -> np.ndarray:
        width, height = self.size
        canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        high = self.low + (np.array([width, height]) - 60) / self.scale
        for axis in (0, 1):
            for metre in range(math.ceil(self.low[axis]), math.floor(high[axis]) + 1):
                major = metre % 5 == 0
                ends = np.array([self.low, high], dtype=np.float64)
                ends[:, axis] = metre
                start, end = self.pixels(ends)
                cv2.line(canvas, tuple(start.tolist()), tuple(end.tolist()), GRID_MAJOR if major else GRID, 1)
                if major:
                    anchor = (int(start[0]) + 3, height - 8) if axis == 0 else (4, int(start[1]) - 3)
                    cv2.putText(canvas, f"{metre} m", anchor, FONT, 0.4, INK, 1, cv2.LINE_AA)
        self._draw_camera(canvas)
        return canvas

    def _draw_camera(self, canvas: np.ndarray) -> None:
        """The camera at the origin and the edges of its field of view on the ground (dashed)."""
        width = self.image_size[0]
        half_angle = math.atan2(width / 2, self.ground.focal)
        reach = float(np.abs(self.low).max() + self.size[0] / self.scale)
        origin = self.pixels(np.zeros((1, 2)))[0]
        for side in (-1, 1):
            tip = self.pixels(np.array([[side * math.tan(half_angle) * reach, reach]]))[0]
            for fraction in np.arange(0.0, 1.0, 0.04):
                a = origin + (tip - origin) * fraction
                b = origin + (tip - origin) * (fraction + 0.02)
                cv2.line(canvas, tuple(a.astype(int).tolist()), tuple(b.astype(int).tolist()), CAMERA_COLOUR, 1)
        body = np.array([[0, 0], [-0.4, -0.6], [0.4, -0.6]])
        cv2.fillPoly(canvas, [self.pixels(body)], CAMERA_COLOUR, cv2.LINE_AA)
        cv2.putText(canvas, "camera", tuple((origin + [8, 16]).tolist()), FONT, 0.45, INK, 1, cv2.LINE_AA)


def draw_trajectories(
    ground_map: GroundMap, tracks: list[GroundTrack], until: int | None = None, max_gap: int = 10, stride: int = 1
) -> np.ndarray:
    """The map with every track's path up to frame `until` (all when None): lines in the track's colour, broken at
    gaps of more than `max_gap` frames, a dot and the id where each track was last seen."""
    canvas = ground_map.background.copy()
    for track in tracks:
        shown = track.frames <= until if until is not None else np.ones(len(track.frames), dtype=bool)
        if not shown.any():
            continue
        frames, pixels = track.frames[shown], ground_map.pixels(track.positions[shown])
        colour = track_colour(track.track_id)
        breaks = np.flatnonzero(np.diff(frames) > (max_gap + 1) * stride) + 1
        for piece in np.split(np.arange(len(frames)), breaks):
            cv2.polylines(canvas, [pixels[piece]], False, colour, 2, cv2.LINE_AA)
        present = until is None or frames[-1] == until
        last = tuple(pixels[-1].tolist())
        cv2.circle(canvas, last, 6 if present else 4, colour, cv2.FILLED, cv2.LINE_AA)
        cv2.putText(canvas, str(track.track_id), (last[0] + 7, last[1] - 5), FONT, 0.5, INK, 1, cv2.LINE_AA)
    return canvas


def write_birdseye(results: Results, ground: GroundPlane, png: Path, mp4: Path | None, size: int = 900) -> list[Path]:
    """Write the PNG of all trajectories and, when `mp4` is given, the video of the tracks moving (one frame per
    processed frame, at the run's rate); returns the files written."""
    tracks = ground_tracks(results, ground)
    ground_map = GroundMap(tracks, ground, (int(results.header["width"]), int(results.header["height"])), size)
    stride = int(results.header["frame_numbers"][2])
    first, last, _ = results.header["frame_numbers"]
    caption = (
        f"{results.header['name']} frames {first}-{last}: {len(tracks)} tracks from above",
        f"camera {ground.camera_height:.1f} m up, pitch {math.degrees(ground.pitch):.0f} deg, f {ground.focal:.0f} px",
    )
    for line, text in enumerate(caption):
        cv2.putText(ground_map.background, text, (6, 12 + 13 * line), FONT, 0.38, INK, 1, cv2.LINE_AA)
    png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), cv2.cvtColor(draw_trajectories(ground_map, tracks, stride=stride), cv2.COLOR_RGB2BGR))
    written = [png]
    if mp4 is not None:
        width, height = (value // 2 * 2 for value in ground_map.size)
        fps = float(results.header["fps"]) / stride
        video = H264Writer(mp4, fps, (width, height), crf=23, preset="superfast")
        try:
            for record in results.frames():
                image = draw_trajectories(ground_map, tracks, until=int(record["frame"]), stride=stride)
                video.write(np.ascontiguousarray(image[:height, :width]))
        except BaseException:
            video.abandon()
            raise
        video.close()
        written.append(mp4)
    return written
