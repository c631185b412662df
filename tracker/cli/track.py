"""`phalanx-track` (`python tools/track.py`): track people in a video, `video=PATH [key=value ...]` (Hydra; see
configs/track.yaml)."""
from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from models.structures import InputError
from tracker.cli.process import keep_freed_memory, set_run_threads
from tracker.command_line import check_command_line
from tracker.pipeline import run
from tracker.progress import ALWAYS, configure_console_logging
from tracker.resume import RunInterrupted
from tracker.schema import RESOLVED_CONFIG_FILE
from tracker.sweep import RunFailed

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
log = logging.getLogger("phalanx")


@hydra.main(config_path=str(CONFIG_DIR), config_name="track", version_base="1.3")
def track(cfg: DictConfig) -> None:
    """One run (or one job of a sweep) of the composed configuration."""
    configure_console_logging(cfg.verbose)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        try:
            (run_dir / RESOLVED_CONFIG_FILE).write_text(OmegaConf.to_yaml(cfg, resolve=True))
            keep_freed_memory()
            threads = set_run_threads(cfg.get("threads"), HydraConfig.get().launcher)
            log.debug("%d torch CPU threads", threads)
            run(cfg, run_dir, multirun)
        except RunInterrupted as stopped:
            log.warning("%s", resume_hint(stopped.frame, run_dir), extra=ALWAYS)
            sys.exit(130)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            raise InputError(f"The disk holding {run_dir} is full: free some space and run again.") from None
    except (InputError, PermissionError) as error:
        log.error("%s", error)
        if multirun:  # Hydra completes the sweep's other runs, then prints this sentence and exits non-zero
            raise RunFailed(f"Run {run_dir} failed: {error}") from None
        sys.exit(2)
    except Exception:
        log.exception("Run %s failed.", run_dir)  # into track.log too, where tools/summarize.py finds it
        raise
    log.info("results in %s", run_dir, extra=ALWAYS)


def resume_hint(frame: int, run_dir: Path) -> str:
    """The line a run stopped by Ctrl-C leaves: where it stopped and the command that continues it."""
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(("resume=", "hydra.run.dir="))]
    command = " ".join(["python tools/track.py", *overrides, "resume=true", f"hydra.run.dir={run_dir}"])
    return f"Stopped after frame {frame}; continue with: {command}"


def main() -> None:
    """Checks the command line (one sentence and exit status 2 when it is bad), then runs Hydra."""
    try:
        check_command_line(CONFIG_DIR, "track", sys.argv[1:])
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    track()
