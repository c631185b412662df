"""Scale-aware view planning for SSDLite: which views of a frame put its people where the network is accurate.

SSDLite was trained at 300×300 and finds people reliably once they are about `target_height` network pixels tall
(benchmarks/bench_detection.py; on MOT17 frames recall of well visible people rises from under 40% at 40-80 px to
over 90% at 100-130 px). A person of height h in the frame is s·h pixels tall in a whole-frame view at scale s, so
there are two ways to get people to that height, and the planner takes the cheaper one, counted in network pixels:

- zoom: one whole-frame view (aspect kept) at s = target / typical person height, capped by `max_input_pixels`;
  the cost grows with the frame's area and is the same however many people there are.
- look: a coarse whole-frame view of `coarse_input_pixels`, then a second look at each candidate that is shorter
  than the target in it (a window around it at `second_look_size`², where it is about target tall); the cost grows
  with the number of people.

The typical height and the number of candidates come from the people found so far (`PeopleEstimate`, from the
previous window of frames); with nothing found yet the coarse view comes first and its people decide. Views of one
plan have one input size for all frames of a window, so they are batched across frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.structures import Detections

ALIGNMENT = 16  # network input sides are multiples of this (the stride of SSDLite's first feature map)
MIN_SIDE = 32  # and at least this
TYPICAL_QUANTILE = 0.25  # the typical height is this quantile of confident people's heights: smaller people count
CONFIDENT_SCORE = 0.5  # people scoring at least this set the typical height


@dataclass(frozen=True)
class PlanSettings:
    """What the planner needs to know: the target height, the pixel budgets and whether a second look is allowed."""

    target_height: float
    max_input_pixels: int
    coarse_input_pixels: int
    second_look_size: int
    second_look: bool
    candidate_score: float
    max_scale: float = 1.0  # views never enlarge the frame as a whole (the second look does, around a person)


@dataclass(frozen=True)
class PeopleEstimate:
    """People found in a window of frames: the typical (lower-quartile) height of the confident ones in frame
    pixels (None when none was confident) and the mean number of second-look candidates per frame."""

    height: float | None
    candidates: float


@dataclass(frozen=True)
class ViewPlan:
    """One whole-frame view at `input_size` (height, width) for every frame of a window, and whether detections
    shorter than the target in that view get a second look."""

    input_size: tuple[int, int]
    second_look: bool

    def scale(self, frame_height: int) -> float:
        """Network pixels per frame pixel in this plan's whole-frame view (vertically)."""
        return self.input_size[0] / frame_height


def view_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The network input (height, width) of a whole-frame view at `scale`, aspect kept, sides multiples of 16."""
    return (max(MIN_SIDE, round(height * scale / ALIGNMENT) * ALIGNMENT),
            max(MIN_SIDE, round(width * scale / ALIGNMENT) * ALIGNMENT))


def budget_scale(height: int, width: int, pixels: int, settings: PlanSettings) -> float:
    """The scale at which a whole-frame view holds `pixels` network pixels (at most max_scale)."""
    return min(math.sqrt(pixels / (height * width)), settings.max_scale)


def coarse_plan(height: int, width: int, settings: PlanSettings) -> ViewPlan:
    """The plan with nothing known about the people: the coarse view, its small detections looked at again."""
    scale = budget_scale(height, width, settings.coarse_input_pixels, settings)
    return ViewPlan(view_size(height, width, scale), settings.second_look)


def plan_views(height: int, width: int, people: PeopleEstimate | None, settings: PlanSettings) -> ViewPlan:
    """The cheaper of zoom and look (module docstring) for a height × width frame, given the people found so far."""
    if people is None or people.height is None:
        return coarse_plan(height, width, settings)
    coarse_scale = budget_scale(height, width, settings.coarse_input_pixels, settings)
    wanted = settings.target_height / people.height
    zoom_scale = max(min(wanted, budget_scale(height, width, settings.max_input_pixels, settings)), coarse_scale)
    zoom_cost = zoom_scale**2 * height * width
    look_cost = settings.coarse_input_pixels + people.candidates * settings.second_look_size**2
    if settings.second_look and wanted > coarse_scale and look_cost < zoom_cost:
        return coarse_plan(height, width, settings)
    return ViewPlan(view_size(height, width, zoom_scale), False)


def estimate_people(detections: list[Detections], frame_height: int, frame_width: int,
                    settings: PlanSettings) -> PeopleEstimate:
    """The typical height of the confident people of a window and its second-look candidates per frame: those
    scoring at least candidate_score that would be shorter than the target in the coarse view."""
    coarse_scale = budget_scale(frame_height, frame_width, settings.coarse_input_pixels, settings)
    heights = [found.boxes[:, 3] - found.boxes[:, 1] for found in detections]
    confident = np.concatenate([h[found.scores >= CONFIDENT_SCORE] for h, found in zip(heights, detections)])
    short = [(found.scores >= settings.candidate_score) & (h * coarse_scale < settings.target_height)
             for h, found in zip(heights, detections)]
    candidates = sum(int(np.sum(mask)) for mask in short)
    typical = float(np.quantile(confident, TYPICAL_QUANTILE)) if len(confident) else None
    return PeopleEstimate(typical, candidates / max(len(detections), 1))
