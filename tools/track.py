"""Track people in a video: `python tools/track.py video=PATH [key=value ...]` (Hydra; see configs/track.yaml)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from tracker.command_line import check_command_line
from tracker.errors import InputError
from tracker.pipeline import run
from tracker.progress import ALWAYS, configure_console_logging
from tracker.sweep import RunFailed

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
log = logging.getLogger("phalanx")


@hydra.main(config_path="../configs", config_name="track", version_base="1.3")
def main(cfg: DictConfig) -> None:
    configure_console_logging(cfg.verbose)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        (run_dir / "config.resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        run(cfg, run_dir, multirun)
    except (InputError, PermissionError) as error:
        log.error("%s", error)
        if multirun:  # Hydra completes the sweep's other runs, then prints this sentence and exits non-zero
            raise RunFailed(f"Run {run_dir} failed: {error}") from None
        sys.exit(2)
    except Exception:
        log.exception("Run %s failed.", run_dir)  # into track.log too, where tools/summarize.py finds it
        raise
    log.info("results in %s", run_dir, extra=ALWAYS)


if __name__ == "__main__":
    try:
        check_command_line(CONFIG_DIR, "track", sys.argv[1:])
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    main()
