"""Sweeps: `tools/track.py -m` over several values and videos with the basic and joblib launchers, a failing run that
does not stop the others, and `tools/summarize.py` (CSV, markdown, plots, failed rows with their error)."""
import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT
from hydra import compose, initialize_config_dir

from models.structures import InputError
from tracker.sweep import find_runs, summarize_sweep, swept_keys

FRAMES = 24
PEOPLE = (  # x at frame 1, y, speed in px/frame
    (10.0, 20.0, 3.0),
    (150.0, 40.0, -2.5),
)


def make_sequence(folder: Path) -> Path:
    """A 24-frame MOT sequence folder (img1/, seqinfo.ini, det/det.txt, gt/gt.txt) with two people walking past each
    other; the detections are the ground truth boxes, so a tracker should follow both without a switch."""
    (folder / "img1").mkdir(parents=True)
    (folder / "det").mkdir()
    (folder / "gt").mkdir()
    det, gt = [], []
    for frame in range(1, FRAMES + 1):
        image = np.full((96, 192, 3), 90, dtype=np.uint8)
        for person, (x0, y, speed) in enumerate(PEOPLE, start=1):
            x = x0 + speed * (frame - 1)
            cv2.rectangle(image, (int(x), int(y)), (int(x) + 14, int(y) + 40), (200, 60 * person, 40), cv2.FILLED)
            det.append(f"{frame},-1,{x:.1f},{y:.1f},14,40,90,-1,-1,-1")
            gt.append(f"{frame},{person},{x:.1f},{y:.1f},14,40,1,-1,-1,-1")
        cv2.imwrite(str(folder / "img1" / f"{frame:06d}.jpg"), image)
    (folder / "det" / "det.txt").write_text("\n".join(det) + "\n")
    (folder / "gt" / "gt.txt").write_text("\n".join(gt) + "\n")
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={folder.name}\nimDir=img1\nframeRate=10\nseqLength={FRAMES}\nimWidth=192\nimHeight=96\n"
    )
    return folder


def sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "tools" / "track.py"), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_failed_run_does_not_stop_the_sweep_and_is_marked(tmp_path):
    good = make_sequence(tmp_path / "walk")
    missing = tmp_path / "missing.mp4"
    result = sweep(tmp_path / "sweep", f"video={missing},{good}", "tracker.n_init=1,2")
    assert result.returncode != 0  # the sweep says that a run failed...
    for job in range(4):  # ...but every run was attempted, the failing ones first
        assert (tmp_path / "sweep" / str(job) / ".hydra" / "overrides.yaml").is_file(), result.stderr
    assert not (tmp_path / "sweep" / "0" / "overlay.mp4").exists()  # no overlay video in sweeps by default
    text, written = summarize_sweep(tmp_path / "sweep")
    with open(tmp_path / "sweep" / "summary" / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["failed", "failed", "ok", "ok"]
    assert all("missing.mp4" in row["error"] and "does not exist" in row["error"] for row in rows[:2])
    assert [row["tracker.n_init"] for row in rows] == ["1", "2", "1", "2"]
    for row in rows[2:]:
        assert float(row["HOTA"]) > 0.8 and int(row["IDSW"]) == 0 and float(row["fps"]) > 0
    table = (tmp_path / "sweep" / "summary" / "sweep.md").read_text()
    assert "| failed |" in table and "Combined over the videos" in table
    plot = tmp_path / "sweep" / "summary" / "tracker.n_init.png"
    assert plot in written and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text, _ = summarize_sweep(tmp_path / "sweep", tmp_path / "other", gt=tmp_path / "no_gt.txt", plots=False)
    per_run = text.split("Combined")[0]
    assert per_run.count("| not evaluated |") == 2 and "no_gt.txt does not exist" in per_run


@pytest.mark.slow
def test_joblib_launcher_runs_the_sweep(tmp_path):
    good = make_sequence(tmp_path / "walk")
    result = sweep(
        tmp_path / "sweep", f"video={good}", "tracker.max_age=5,10", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"
    )
    assert result.returncode == 0, result.stderr
    runs = find_runs(tmp_path / "sweep")
    assert [run.overrides["tracker.max_age"] for run in runs] == ["5", "10"] and swept_keys(runs) == ["tracker.max_age"]
    assert all((run.run_dir / "tracks.mot.txt").is_file() and run.status == "ok" for run in runs)
    text, _ = summarize_sweep(tmp_path / "sweep", plots=False)
    assert text.count("| ok |") == 2


def test_summary_of_a_folder_without_runs_is_one_sentence(tmp_path):
    with pytest.raises(InputError, match="no run folders"):
        summarize_sweep(tmp_path)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "summarize.py"), str(tmp_path / "nowhere")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nowhere" in result.stderr


def test_slurm_launcher_config_extends_the_submitit_plugin():
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("track", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.gpus_per_node == 1 and launcher.timeout_min > 60  # ours, over the plugin's defaults
    assert "partition" in launcher and "additional_parameters" in launcher  # the plugin's own keys remain
