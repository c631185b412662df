"""resume=true end to end: a run killed (SIGKILL) or stopped (Ctrl-C) after some windows, then resumed, ends with
the same tracks.mot.txt and results arrays as an uninterrupted run; resuming what cannot be resumed is refused."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, needs_pets

from tracker.io import load_results
from tracker.io.checkpoint import load_checkpoint
from tracker.io.records import TruncatedRecord
from tracker.io.run_lock import RunFolderLock
from tracker.schema import CHECKPOINT_FILE

pytestmark = [pytest.mark.slow, needs_pets]  # every test here launches tools/track.py in a subprocess

# Several windows of PETS09; the template regressor keeps the runs short (the state is the same kind either way).
RUN = ("render=off", "end=60", "window=8", "regressor=template")


def command(run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "tools" / "track.py"), f"hydra.run.dir={run_dir}", *RUN, *overrides]


def track(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(run_dir, *overrides), capture_output=True, text=True, cwd=ROOT, timeout=600)


def checkpointed_frame(run_dir: Path) -> int:
    """The last frame the run's checkpoint holds (0 before its first)."""
    try:
        return load_checkpoint(run_dir / CHECKPOINT_FILE)["last_frame"]
    except (FileNotFoundError, ValueError, TruncatedRecord):
        return 0


def start_and_stop(run_dir: Path, after: int, how: signal.Signals, *overrides: str) -> subprocess.Popen:
    """Starts a run and sends it `how` once its checkpoint has passed frame `after`; returns it once it ended."""
    process = subprocess.Popen(command(run_dir, *overrides), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=ROOT)  # fmt: skip
    while checkpointed_frame(run_dir) < after:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.02)
    process.send_signal(how)
    process.wait(timeout=600)
    return process


def assert_same_results(run_dir: Path, reference: Path) -> None:
    assert (run_dir / "tracks.mot.txt").read_bytes() == (reference / "tracks.mot.txt").read_bytes()
    ours, theirs = load_results(run_dir), load_results(reference)
    assert ours.header == theirs.header
    frames, expected = list(ours.frames()), list(theirs.frames())
    assert len(frames) == len(expected) == 60
    for frame, want in zip(frames, expected):
        assert frame.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(np.asarray(frame[key]), np.asarray(want[key]), err_msg=key)
    assert not (run_dir / CHECKPOINT_FILE).exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    result = track(run_dir)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.mark.parametrize("after", [16, 32, 48])
def test_a_killed_run_resumes_to_the_uninterrupted_results(tmp_path, reference, after):
    killed = start_and_stop(tmp_path, after, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "results.phx").exists()
    result = track(tmp_path, "resume=true")
    assert result.returncode == 0, result.stderr
    assert_same_results(tmp_path, reference)


def test_a_killed_run_with_warm_started_fits_resumes_to_the_uninterrupted_results(tmp_path):
    warm = ("regressor=blazepose", "regressor.warm_start=true")
    result = track(tmp_path / "uninterrupted", *warm)
    assert result.returncode == 0, result.stderr
    killed = start_and_stop(tmp_path / "killed", 24, signal.SIGKILL, *warm)
    assert killed.returncode == -signal.SIGKILL
    result = track(tmp_path / "killed", *warm, "resume=true")
    assert result.returncode == 0, result.stderr
    assert_same_results(tmp_path / "killed", tmp_path / "uninterrupted")


def test_ctrl_c_finishes_the_window_and_says_how_to_resume(tmp_path, reference):
    stopped = start_and_stop(tmp_path, 8, signal.SIGINT)
    output = stopped.stdout.read()
    assert stopped.returncode == 130, output
    hints = [line for line in output.splitlines() if "continue with:" in line]
    assert len(hints) == 1 and "resume=true" in hints[0] and f"hydra.run.dir={tmp_path}" in hints[0], output
    assert "Traceback" not in output
    assert checkpointed_frame(tmp_path) % 8 == 0 and (tmp_path / "results.phx.partial").exists()
    result = track(tmp_path, "resume=true")
    assert result.returncode == 0, result.stderr
    assert_same_results(tmp_path, reference)


def assert_refused(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_resume_is_refused_without_a_checkpoint_on_a_finished_run_and_with_another_configuration(tmp_path, reference):
    assert_refused(track(tmp_path / "empty", "resume=true"), "checkpoint.phx", "there is none")
    assert_refused(track(reference, "resume=true"), "finished")
    stopped = start_and_stop(tmp_path / "stopped", 8, signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL
    assert_refused(track(tmp_path / "stopped", "resume=true", "tracker.max_age=7"), "differs", "tracker.max_age")
    assert_refused(track(tmp_path / "stopped", "resume=true", "end=59"), "differs", "end")


def test_a_run_folder_being_written_by_another_process_is_refused(tmp_path, reference):
    stopped = start_and_stop(tmp_path / "stopped", 8, signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL
    with RunFolderLock(tmp_path / "stopped"):  # as a second resume=true of the same folder would hold it
        assert_refused(track(tmp_path / "stopped", "resume=true"), "Another phalanx process is writing")
    resumed = track(tmp_path / "stopped", "resume=true")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert_same_results(tmp_path / "stopped", reference)
