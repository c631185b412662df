"""Re-identification in the tracker: the appearance gate, lost tracks found again beyond the box-overlap gate,
and shot changes where only appearance carries identities across."""
import numpy as np
import pytest
import torch

from models.structures import Detections, InputError, ScoreThresholds
from tracker.appearance import EmbeddingMemory
from tracker.features import Cues
from tracker.reid import Reidentification
from tracker.tracker import Tracker

RED, BLUE = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
SCALE = 768.0


def tracker(**options) -> Tracker:
    params = dict(thresholds=ScoreThresholds(high=0.5, low=0.1, new_track=0.5), n_init=1, max_age=30,
                  appearance=EmbeddingMemory(rate=0.5, distance_scale=0.2), appearance_gate=1.0)  # fmt: skip
    return Tracker(**{**params, **options})


def box(cx: float, cy: float = 300.0, h: float = 80.0) -> list[float]:
    return [cx - h / 6, cy - h / 2, cx + h / 6, cy + h / 2]


def step(tracker: Tracker, frame: int, boxes: list[list[float]], looks: list[torch.Tensor], cut: bool = False):
    """One frame: detections at `boxes` that look like `looks`; returns {detection: track id}."""
    detections = Detections(boxes, np.ones(len(boxes))) if boxes else Detections.empty()
    centre = (detections.boxes[:, :2] + detections.boxes[:, 2:]) / 2 / SCALE
    embeddings = torch.stack(looks) if looks else torch.zeros((0, 3))
    matched = tracker.associate(detections, frame, Cues(point=centre, appearance=embeddings, scale=SCALE), cut)
    return {int(d): t.track_id for d, t in zip(matched, tracker.tracks) if d >= 0}


def test_the_appearance_gate_stops_a_track_from_taking_someone_who_looks_different():
    gated, blind = tracker(), tracker(appearance=None)
    for frame in range(1, 6):
        for t in (gated, blind):
            step(t, frame, [box(100 + 4 * frame)], [RED])
    # The red person is hidden; a blue person appears where the red one was heading.
    assert step(gated, 6, [box(124)], [BLUE]) == {0: 2}  # a new track, not red's
    assert step(blind, 6, [box(124)], [BLUE]) == {0: 1}  # motion alone gives red's identity away


def test_a_lost_track_is_found_again_beyond_the_overlap_gate_only_when_it_looks_alike():
    reid = Reidentification(max_appearance=0.8, min_radius=1.0)
    for look, expected in ((RED, 1), (BLUE, 2)):
        t = tracker(reid=reid)
        for frame in range(1, 6):
            step(t, frame, [box(100 + 8 * frame)], [RED])
        for frame in range(6, 12):  # hidden for six frames; meanwhile the person stopped
            step(t, frame, [], [])
        # They reappear 46 px short of where their box was heading: no overlap, but within the forecast's reach.
        assert step(t, 12, [box(150, h=90)], [look]) == {0: expected}
    without = tracker(reid=None)
    for frame in range(1, 6):
        step(without, frame, [box(100 + 8 * frame)], [RED])
    for frame in range(6, 12):
        step(without, frame, [], [])
    assert step(without, 12, [box(150, h=90)], [RED]) == {0: 2}  # without the stage: a new identity


def test_across_a_cut_identities_follow_appearance_not_position():
    t = tracker()
    for frame in range(1, 4):
        step(t, frame, [box(100), box(500)], [RED, BLUE])
    # After the cut the two people stand where the other one stood: positions must not be trusted.
    assert step(t, 4, [box(100), box(500)], [BLUE, RED], cut=True) == {0: 2, 1: 1}
    # Without appearance a cut gives everyone a new identity.
    blind = tracker(appearance=None)
    for frame in range(1, 4):
        step(blind, frame, [box(100), box(500)], [RED, BLUE])
    assert set(step(blind, 4, [box(100), box(500)], [BLUE, RED], cut=True).values()) == {3, 4}


def test_sixty_people_in_one_frame():
    t = tracker(reid=Reidentification(max_appearance=0.8))
    looks = [torch.nn.functional.normalize(torch.randn(3, generator=torch.Generator().manual_seed(k)), dim=0)
             for k in range(60)]  # fmt: skip
    rows = [box(20 + 12 * (k % 30), 150 + 200 * (k // 30), h=40) for k in range(60)]
    first = step(t, 1, rows, looks)
    second = step(t, 2, [[v + 1 for v in b] for b in rows], looks)
    assert len(first) == 60 and second == first


def test_bad_reidentification_settings_are_one_sentence():
    with pytest.raises(InputError, match="max_gap"):
        Reidentification(max_appearance=0.8, max_gap=0)
