"""A finished run as the exporters read it: its results (through `tracker.io.load_results`), optionally smoothed per
track, the body model it posed with, and the ground plane under its people."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

from models.body import BodyModel
from models.structures import InputError
from tracker.build import build_run_body_model
from tracker.ground import GroundPlane, estimate_ground
from tracker.io import Results, load_results
from tracker.smoothing import SmoothingFilter, smooth_results, smoothed_records
from tracker.sweep import run_input_path

log = logging.getLogger(__name__)


class ExportRun:
    """A run folder (or results file) read for export. `smoothing` filters every track offline before any
    exporter sees it; `frames` (first, last) limits the frames exported (the filters still see the whole run);
    `trust` lets a version-1 results.jbl (a pickle) be read (see load_results)."""

    def __init__(
        self,
        path: str | Path,
        smoothing: SmoothingFilter | None = None,
        frames: tuple[int, int] | None = None,
        trust: bool = False,
    ) -> None:
        self.results: Results = load_results(path, trust)
        self.smoothing = smoothing
        self.frames = frames

    @property
    def header(self) -> dict:
        return self.results.header

    @property
    def name(self) -> str:
        return str(self.header["name"])

    @property
    def folder(self) -> Path:
        return self.results.path.parent

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.header["width"]), int(self.header["height"])

    @property
    def fps(self) -> float:
        """Frames per second of the exported frames (the video's rate over the run's stride)."""
        return float(self.header["fps"]) / int(self.header["frame_numbers"][2])

    @property
    def has_bodies(self) -> bool:
        return "cam_t" in self.header["per_box_keys"]

    @cached_property
    def body_model(self) -> BodyModel:
        """The body model the run posed with (its `body` configuration)."""
        return build_run_body_model(self.header["config"]["body"])

    @cached_property
    def ground(self) -> GroundPlane | None:
        """The ground plane under the run's people, or None (logged) when the run cannot give one."""
        try:
            plane = estimate_ground(self.results)
        except InputError as error:
            log.warning("No ground plane: %s", error)
            return None
        log.info("Ground plane: %s", plane.to_dict())
        return plane

    @cached_property
    def _smoothed(self) -> dict:
        if self.smoothing is None or not self.has_bodies:
            return {}
        return smooth_results(self.results, self.smoothing, self.body_model)

    def records(self) -> Iterator[dict]:
        """The exported frames' records in order (smoothed rows replaced)."""
        for record in smoothed_records(self.results, self._smoothed):
            if self.frames is None or self.frames[0] <= record["frame"] <= self.frames[1]:
                yield record

    def video_path(self) -> Path:
        """The run's input video, a relative path taken from the folder the run was started in."""
        return run_input_path(self.folder, self.header["video"])
