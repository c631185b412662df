"""Resuming a stopped run (README, "Resuming a killed run"): the checkpoint a run writes after every window, the
checks before a run continues from one, and Ctrl-C, which stops a run after its current window."""
from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from models.structures import InputError
from tracker.io.checkpoint import load_checkpoint
from tracker.io.records import TruncatedRecord
from tracker.schema import CHECKPOINT_FILE, RESULTS_FILE

log = logging.getLogger(__name__)


class RunInterrupted(Exception):
    """Ctrl-C stopped the run after a window; its checkpoint holds frame `frame`'s state."""

    def __init__(self, frame: int) -> None:
        super().__init__(f"stopped after frame {frame}")
        self.frame = frame


def run_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved configuration a checkpoint must match: all of it but `resume`."""
    config = OmegaConf.to_container(cfg, resolve=True)
    config.pop("resume", None)
    return config


def load_resumable(run_dir: Path, cfg: DictConfig, header: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint of the stopped run in `run_dir`, or InputError (one sentence) when there is none to continue
    with this configuration and video (`header`: the results header this run would write)."""
    if (run_dir / RESULTS_FILE).exists():
        raise InputError(f"The run in {run_dir} is finished: there is nothing to resume.")
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        raise InputError(f"resume=true needs a stopped run's {CHECKPOINT_FILE} in {run_dir}, and there is none.")
    try:
        state = load_checkpoint(path)
    except (ValueError, TruncatedRecord):
        raise InputError(f"{path} is damaged: the run cannot be resumed.") from None
    differing = _differing_keys(state["config"], run_config(cfg))
    if differing:
        raise InputError(
            f"The configuration differs from the stopped run's in {', '.join(differing)}: resume with the same "
            "configuration."
        )
    ours = {key: value for key, value in header.items() if key != "config"}
    if state["header"] != ours:
        raise InputError(f"The video {header['video']} is not the one the stopped run in {run_dir} was tracking.")
    return state


def _differing_keys(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two nested configurations differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = list(dict.fromkeys([*saved, *current]))
        return [d for key in keys for d in _differing_keys(saved.get(key), current.get(key), f"{prefix}{key}.")]
    return [] if saved == current else [prefix.rstrip(".")]


class StopRequest:
    """While entered, the first Ctrl-C (SIGINT) only asks the run to stop after its current window; a second one
    interrupts at once. Once `finishing` is called (no window is left, the last frames are being written) the first
    one only says so. Outside the main thread (nothing receives signals there) it never asks."""

    def __init__(self) -> None:
        self.requested = False
        self._finishing = False
        self._previous: Any = None

    def finishing(self) -> None:
        """The last window is done: from now on a first Ctrl-C cannot stop anything sooner than the run's end."""
        self._finishing = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._finishing:
            log.warning("Ctrl-C: every window is done, the run ends once its last frames are written "
                        "(Ctrl-C again stops at once).")  # fmt: skip
        else:
            log.warning("Ctrl-C: stopping after this window (Ctrl-C again stops at once, losing the window).")
