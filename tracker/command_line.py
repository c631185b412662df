"""Checks a Hydra command line before Hydra runs it, so that a bad key or folder fails with one sentence."""
from __future__ import annotations

import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from models.structures import InputError

_MULTIRUN_FLAGS = {"-m", "--multirun"}


def check_command_line(config_dir: Path, config_name: str, argv: list[str]) -> None:
    """Composes the configuration (first value of each sweep) and creates the output folder, or raises InputError."""
    if any(arg.startswith("-") and arg not in _MULTIRUN_FLAGS for arg in argv):
        return
    multirun = any(arg in _MULTIRUN_FLAGS for arg in argv)
    try:
        overrides = [_first_of_sweep(o) for o in OverridesParser.create().parse_overrides(
            [arg for arg in argv if arg not in _MULTIRUN_FLAGS]
        )]
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
            out_dir = cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir
            OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as error:
        raise InputError(_one_sentence(error)) from None
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"Cannot create the output folder {out_dir}: {error.strerror}.") from None


def _first_of_sweep(override) -> str:
    """`key=a,b,c` → `key=a`, so that a sweep is checked once with its first value."""
    if override.is_sweep_override():
        return f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}"
    return override.input_line


def _one_sentence(error: Exception) -> str:
    text = str(error)
    unknown = re.search(r"Could not override '([^']+)'", text)
    if unknown and "not in struct" in str(error.__cause__ or ""):
        key = unknown.group(1)
        return (
            f"Unknown configuration key '{key}': `python tools/track.py --cfg job` lists the keys "
            f"(+{key}=... adds one)."
        )
    return text.strip().splitlines()[0]
