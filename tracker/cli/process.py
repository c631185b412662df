"""Process-wide CPU settings of a run: torch threads that follow the cores the run is given, and an allocator that
keeps freed memory for the next window instead of handing it back to the kernel."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch
from omegaconf import DictConfig

from models.structures import InputError

JOBLIB_LAUNCHER = "JoblibLauncher"
# glibc mallopt parameters (malloc.h) and the values set: blocks up to 1 GiB come from the heap, and the heap's
# free top is kept up to 2 GiB, so a window's network buffers are reused rather than mapped, faulted in and unmapped
# again (the kernel zeroes every fresh page: about 8 % of the default run's time went there).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 1 << 30
TRIM_THRESHOLD_BYTES = (1 << 31) - 1


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, e.g. under taskset/Slurm)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def concurrent_runs(launcher: DictConfig | None, cores: int) -> int:
    """How many runs share this machine's cores at once: a joblib sweep's n_jobs (−1 all cores, −k all but k−1,
    as joblib counts), capped at the cores; 1 for a single run or any other launcher (Slurm gives each job its own
    cores)."""
    if launcher is None or JOBLIB_LAUNCHER not in str(launcher.get("_target_", "")):
        return 1
    jobs = int(launcher.get("n_jobs") or 1)
    if jobs < 0:
        jobs = cores + 1 + jobs
    return max(1, min(jobs, cores))


def run_threads(requested: int | None, launcher: DictConfig | None) -> int:
    """The torch CPU threads of a run: `threads=` when set, else this process's cores divided among the runs of
    a joblib sweep that run at once (two processes each using every core slow each other down many times over)."""
    if requested is not None:
        if int(requested) < 1:
            raise InputError(f"threads must be at least 1 (or null for the available cores), got {requested}.")
        return int(requested)
    cores = available_cores()
    return max(1, cores // concurrent_runs(launcher, cores))


def set_run_threads(requested: int | None, launcher: DictConfig | None) -> int:
    """Sets torch's intra-op thread count for this run (see run_threads) and returns it."""
    threads = run_threads(requested, launcher)
    torch.set_num_threads(threads)
    return threads


def keep_freed_memory() -> bool:
    """On glibc, tells malloc to keep freed blocks for reuse (see the constants above); elsewhere does nothing.
    Returns whether it was set. The heap no longer shrinks between windows, so peak RSS depends on how its free
    blocks fragment (PETS09 1-400, render off: 945 MiB against glibc's default 839, for a 14 % faster regressor)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
