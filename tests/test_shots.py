"""Shot changes: found where two real videos are spliced, and no track carried across the cut by position."""
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import MOT17, PETS, ROOT, needs_mot17, needs_pets

from models.detection.detector import Detector
from models.structures import Detections, Frame, InputError
from tracker.io import load_results, open_source
from tracker.pipeline import detect_by_shot
from tracker.shots import ShotDetector

SPLICE = 13  # the first frame of the second video


def spliced_frames() -> list[Frame]:
    """12 frames of PETS09-S2L1, then the 8 frames of MOT17-04 resized to PETS09's 768×576."""
    first = [frame.image for frame in open_source(PETS, end=SPLICE - 1)]
    second = [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (768, 576))
              for p in sorted((MOT17 / "MOT17-04-FRCNN" / "img1").glob("*.jpg"))]  # fmt: skip
    return [Frame(i, (i - 1) / 7, image) for i, image in enumerate(first + second, start=1)]


@needs_pets
@needs_mot17
def test_the_cut_is_found_at_the_splice_and_nowhere_else():
    frames = spliced_frames()
    detector = ShotDetector()
    flags = detector.cuts(frames[:7]) + detector.cuts(frames[7:])  # across two windows
    assert [f.index for f, cut in zip(frames, flags) if cut] == [SPLICE]


def test_bad_settings_are_one_sentence():
    with pytest.raises(InputError, match="threshold"):
        ShotDetector(threshold=0)


class RecordingDetector(Detector):
    """Finds one box per frame and records the frames of each call and each reset."""

    thresholds = None

    def __init__(self) -> None:
        self.calls: list[list[int] | str] = []

    def detect(self, frames):
        self.calls.append([frame.index for frame in frames])
        return [Detections(np.array([[0, 0, 1, frame.index]], np.float32), np.ones(1, np.float32)) for frame in frames]

    def reset(self) -> None:
        self.calls.append("reset")


def test_the_detector_starts_afresh_at_each_shot_change():
    window = [Frame(i, 0.0, np.zeros((4, 4, 3), np.uint8)) for i in range(1, 7)]
    detector = RecordingDetector()
    found = detect_by_shot(detector, window, [True, False, False, True, False, True])
    assert detector.calls == ["reset", [1, 2, 3], "reset", [4, 5], "reset", [6]]
    assert [int(d.boxes[0, 3]) for d in found] == [1, 2, 3, 4, 5, 6]  # in frame order, one per frame
    detector.calls.clear()
    detect_by_shot(detector, window, None)
    assert detector.calls == [[1, 2, 3, 4, 5, 6]]


@pytest.mark.slow
@needs_pets
@needs_mot17
def test_tracking_a_spliced_clip_carries_no_position_across_the_cut(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for frame in spliced_frames():
        cv2.imwrite(str(folder / f"{frame.index:06d}.jpg"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    run = tmp_path / "run"
    command = [sys.executable, str(ROOT / "tools" / "track.py"), f"video={folder}", f"hydra.run.dir={run}",
               "regressor=template", "appearance=none", "render=off", "output.max_gap=0"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr
    rows = np.loadtxt(run / "tracks.mot.txt", delimiter=",", ndmin=2)
    before, after = set(rows[rows[:, 0] < SPLICE, 1]), set(rows[rows[:, 0] >= SPLICE, 1])
    assert before and after and not before & after
    assert [r["frame"] for r in load_results(run).frames() if r["cut"]] == [SPLICE]  # the results record the cut
