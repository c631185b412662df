"""Process-wide settings of a run: torch threads per run of a joblib sweep, and the allocator setting."""
from __future__ import annotations

import sys

import pytest
import torch
from omegaconf import OmegaConf

from models.structures import InputError
from tracker.cli.process import available_cores, concurrent_runs, keep_freed_memory, run_threads, set_run_threads

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def joblib(n_jobs: int):
    return OmegaConf.create({"_target_": JOBLIB, "n_jobs": n_jobs})


def test_a_joblib_sweep_divides_the_cores_among_the_runs_it_runs_at_once():
    assert concurrent_runs(joblib(2), cores=2) == 2
    assert concurrent_runs(joblib(-1), cores=8) == 8  # joblib: -1 is every core
    assert concurrent_runs(joblib(-3), cores=8) == 6  # all but two
    assert concurrent_runs(joblib(32), cores=8) == 8  # never more runs at once than cores
    basic = OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"})
    assert concurrent_runs(basic, cores=8) == 1
    assert concurrent_runs(None, cores=8) == 1


def test_run_threads_follow_the_cores_given_and_an_explicit_count_wins(monkeypatch):
    monkeypatch.setattr("tracker.cli.process.available_cores", lambda: 8)
    assert run_threads(None, None) == 8
    assert run_threads(None, joblib(2)) == 4
    assert run_threads(None, joblib(-1)) == 1
    assert run_threads(3, joblib(2)) == 3
    with pytest.raises(InputError, match="threads must be at least 1"):
        run_threads(0, None)


def test_set_run_threads_sets_torch():
    before = torch.get_num_threads()
    try:
        assert set_run_threads(1, None) == 1 and torch.get_num_threads() == 1
        assert set_run_threads(None, None) == available_cores() == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_the_allocator_setting_is_accepted_on_linux():
    assert keep_freed_memory()
