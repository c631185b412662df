"""Track people in a video: `python tools/track.py video=PATH [key=value ...]` (Hydra; see configs/track.yaml)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from tracker.command_line import check_command_line
from tracker.errors import InputError
from tracker.pipeline import run

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
log = logging.getLogger("phalanx")


@hydra.main(config_path="../configs", config_name="track", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        (run_dir / "config.resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        run(cfg, run_dir)
    except (InputError, PermissionError) as error:
        log.error("%s", error)
        sys.exit(2)
    log.info("results in %s", run_dir)


if __name__ == "__main__":
    try:
        check_command_line(CONFIG_DIR, "track", sys.argv[1:])
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    main()
