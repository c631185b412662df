"""Public detections from det.txt: grouping by frame, thresholds, and errors that name the line."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from models.detection.mot_file import MotFileDetector
from models.structures import Frame, InputError, ScoreThresholds
from tracker.build import build_detector

BLANK = np.zeros((4, 4, 3), np.uint8)
THRESHOLDS = ScoreThresholds(high=1.0, low=0.0, new_track=1.0)


def frames(*numbers: int) -> list[Frame]:
    return [Frame(n, 0.0, BLANK) for n in numbers]


def write(tmp_path, text: str):
    path = tmp_path / "det" / "det.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_groups_by_frame_and_converts_to_xyxy(tmp_path):
    write(tmp_path, "2,-1,10,20,30,40,5.5,-1,-1,-1\n1,-1,0,0,10,10,1,-1,-1,-1\n2,-1,1,1,2,2,0.5,-1,-1,-1\n")
    detector = MotFileDetector(str(tmp_path), THRESHOLDS, scores="raw")
    one, two, three = detector.detect(frames(1, 2, 3))
    assert len(one) == 1 and len(two) == 2 and len(three) == 0
    np.testing.assert_allclose(two.boxes[0], [10, 20, 40, 60])
    np.testing.assert_allclose(two.scores, [5.5, 0.5])
    # Ranked: each score becomes the fraction of the file's scores at or below it.
    (_, ranked, _) = MotFileDetector(str(tmp_path), THRESHOLDS).detect(frames(1, 2, 3))
    np.testing.assert_allclose(ranked.scores, [3 / 3, 1 / 3])


def test_ranked_scores_do_not_change_when_the_file_is_rescaled(tmp_path):
    rows = [(1, 5.0, 12.5), (1, 40.0, -0.5), (2, 7.0, 99.0), (2, 9.0, 12.5)]
    detected = []
    for name, (scale, shift) in {"raw": (1.0, 0.0), "scaled": (0.01, 5.0)}.items():
        text = "".join(f"{f},-1,{x},0,10,30,{score * scale + shift!r},-1,-1,-1\n" for f, x, score in rows)
        detector = MotFileDetector(str(write(tmp_path / name, text)), THRESHOLDS)
        detected.append([d.scores for d in detector.detect(frames(1, 2))])
    for raw, scaled in zip(*detected):
        np.testing.assert_array_equal(raw, scaled)
    np.testing.assert_allclose(detected[0][1], [1.0, 0.75])  # 99 is the top score; 12.5 (twice) ranks 3 of 4
    with pytest.raises(InputError, match="rank or raw"):
        MotFileDetector(str(tmp_path / "raw"), THRESHOLDS, scores="percent")


def test_thresholds(tmp_path):
    path = write(tmp_path, "1,-1,0,0,10,100,50,-1\n1,-1,0,0,10,20,50,-1\n1,-1,0,0,10,100,-1,-1\n")
    (dets,) = MotFileDetector(str(path), THRESHOLDS, min_score=0.0, min_height=50, scores="raw").detect(frames(1))
    assert len(dets) == 1 and dets.boxes[0, 3] == 100


def test_malformed_row_names_the_line(tmp_path):
    write(tmp_path, "1,-1,0,0,10,10,1\n2,-1,zero,0,10,10,1\n")
    with pytest.raises(InputError, match="line 2"):
        MotFileDetector(str(tmp_path), THRESHOLDS)


def test_short_row_names_the_line(tmp_path):
    write(tmp_path, "1,-1,0,0\n")
    with pytest.raises(InputError, match="line 1"):
        MotFileDetector(str(tmp_path), THRESHOLDS)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="No public detections"):
        MotFileDetector(str(tmp_path / "nowhere"), THRESHOLDS)


def test_selection_prefers_public_detections(tmp_path):
    write(tmp_path, "1,-1,0,0,10,10,1\n")
    public = {
        "_target_": "models.detection.mot_file.MotFileDetector",
        "path": str(tmp_path),
        "thresholds": {"_target_": "models.structures.ScoreThresholds", "high": 1, "low": 0, "new_track": 1},
    }
    config = OmegaConf.create({"video": str(tmp_path), "detector": {"public": public, "network": None}})
    assert isinstance(build_detector(config), MotFileDetector)
    config.video = str(tmp_path / "clip.mp4")
    with pytest.raises(InputError, match="no det/det.txt"):
        build_detector(config)
