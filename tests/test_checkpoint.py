"""Checkpoint state: each stateful part's state_dict survives the safe record codec and, loaded into a fresh
object, behaves exactly as the original from then on."""
import numpy as np
import pytest
import torch
from conftest import needs_mot17, needs_pets

from models.structures import Detections, ScoreThresholds
from tests.test_appearance_memory import MeanColour, texture
from tests.test_gaps import frame as gap_frame
from tests.test_shots import spliced_frames
from tracker.appearance import EmbeddingMemory, TextureMemory
from tracker.features import Cues
from tracker.gaps import GapFiller
from tracker.io.checkpoint import load_checkpoint, save_checkpoint
from tracker.shots import ShotDetector
from tracker.tracker import Tracker

LOOKS = [torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.6, 0.8, 0.0])]


def make_tracker() -> Tracker:
    thresholds = ScoreThresholds(high=0.5, low=0.1, new_track=0.5)
    return Tracker(thresholds, n_init=2, max_age=4, appearance=EmbeddingMemory(rate=0.5, distance_scale=0.2),
                   appearance_gate=1.0)  # fmt: skip


def step(tracker: Tracker, frame: int) -> list[tuple]:
    """One frame of three walkers (the third one absent on some frames); returns each track's id, state and box."""
    people = [0, 1] if frame % 5 in (3, 4) else [0, 1, 2]
    boxes = [[50 + 7 * p + 3 * frame + 60 * p, 100, 80 + 60 * p + 3 * frame, 180] for p in people]
    detections = Detections(boxes, np.full(len(boxes), 0.9))
    centre = (detections.boxes[:, :2] + detections.boxes[:, 2:]) / 2 / 640
    cues = Cues(point=centre, appearance=torch.stack([LOOKS[p] for p in people]), scale=640.0)
    tracker.associate(detections, frame, cues)
    return [(t.track_id, t.state.value, t.hits, t.mean.tolist(), t.cov.tolist()) for t in tracker.tracks]


def test_tracker_state_round_trip_continues_identically(tmp_path):
    original = make_tracker()
    for frame in range(1, 12):
        step(original, frame)
    assert len(original.tracks) >= 2 and original.appearance.state_dict()["ids"]
    save_checkpoint(tmp_path / "checkpoint.phx", {"tracker": original.state_dict()})
    resumed = make_tracker()
    resumed.load_state_dict(load_checkpoint(tmp_path / "checkpoint.phx")["tracker"])
    for frame in range(12, 30):
        assert step(resumed, frame) == step(original, frame)
    assert resumed._next_id == original._next_id


def test_texture_memory_round_trip(tmp_path):
    memory = TextureMemory(MeanColour(), blend_rate=0.3)
    memory.observe([4, 9], torch.zeros(2, 3), torch.stack([texture((1, 0, 0)), texture((0, 1, 0))]))
    save_checkpoint(tmp_path / "c.phx", {"memory": memory.state_dict()})
    restored = TextureMemory(MeanColour(), blend_rate=0.3)
    restored.load_state_dict(load_checkpoint(tmp_path / "c.phx")["memory"])
    probe = torch.tensor([[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(restored.distance([4, 9, 5], probe), memory.distance([4, 9, 5], probe))
    for done in (memory, restored):
        done.observe([9], torch.zeros(1, 3), texture((0, 0, 1))[None])
    np.testing.assert_array_equal(restored.distance([4, 9], probe), memory.distance([4, 9], probe))


def test_checkpoint_keeps_nested_values_and_replaces_atomically(tmp_path):
    path = tmp_path / "checkpoint.phx"
    state = {"a": [1, {"b": np.arange(6, dtype=np.float32).reshape(2, 3)}], "c": None, "d": "x", "e": 2.5}
    save_checkpoint(path, state)
    save_checkpoint(path, {**state, "e": 3.5})
    loaded = load_checkpoint(path)
    np.testing.assert_array_equal(loaded["a"][1]["b"], state["a"][1]["b"])
    assert loaded["e"] == 3.5 and loaded["c"] is None and loaded["d"] == "x"
    assert not (tmp_path / "checkpoint.phx.tmp").exists()


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "x.phx").write_bytes(b"")
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "x.phx")




def test_gap_filler_round_trip_fills_and_writes_as_the_original(tmp_path):
    frames = [gap_frame(1, "tentative", True, 0.0, yaw=0.0), gap_frame(2, "confirmed", True, 5.0, yaw=5.0)]
    frames += [gap_frame(i, "lost", False, 99.0) for i in (3, 4)] + [gap_frame(5, "confirmed", True, 40.0, yaw=80.0)]
    original, restored = GapFiller(max_gap=3), GapFiller(max_gap=3)
    written = [f for tracked in frames[:3] for f in original.push(tracked)]
    save_checkpoint(tmp_path / "c.phx", {"gaps": original.state_dict()})
    restored.load_state_dict(load_checkpoint(tmp_path / "c.phx")["gaps"])
    ours, theirs = [], []
    for tracked in frames[3:]:
        ours += restored.push(tracked)
        theirs += original.push(tracked)
    ours += list(restored.flush())
    theirs += list(original.flush())
    assert len(written) + len(theirs) == 5 and len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.record().keys() == b.record().keys()
        for key, value in b.record().items():
            np.testing.assert_array_equal(a.record()[key], value, err_msg=key)


@needs_pets
@needs_mot17
def test_shot_detector_round_trip_finds_the_same_cuts(tmp_path):
    frames = spliced_frames()
    whole = ShotDetector().cuts(frames)
    first = ShotDetector()
    before = first.cuts(frames[:8])
    save_checkpoint(tmp_path / "c.phx", {"shots": first.state_dict()})
    resumed = ShotDetector()
    resumed.load_state_dict(load_checkpoint(tmp_path / "c.phx")["shots"])
    assert before + resumed.cuts(frames[8:]) == whole and any(whole)
