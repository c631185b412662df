"""`phalanx-export` (`python tools/export.py`): write a finished run in the formats other tools read.

`RUN --format FORMAT [--output PATH] [--frames FIRST-LAST] [key=value ...]` (keys of configs/export.yaml, e.g.
smooth=savgol frame=ground).

Formats: `phalp` (PHALP's results pickle), `amass` (one AMASS-style .npz per track), `csv` (boxes and 3D positions per
track and frame), `rrd` (a Rerun recording: video, boxes, posed meshes in 3D; needs `pip install phalanx[rerun]`).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from models.structures import InputError
from tracker.build import build
from tracker.eval import parse_frame_range
from tracker.export import FORMATS, ExportRun, write_amass, write_csv, write_phalp, write_rrd
from tracker.schema import EXPORT_FOLDER

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
log = logging.getLogger("phalanx")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options: the run, the format, where to write, which frames, and export options as key=value."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder or its results.phx")
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--output", type=Path, help="file (folder for amass); default: RUN/export/...")
    parser.add_argument("--frames", help="export only frames FIRST-LAST (1-based, inclusive), e.g. 1-100")
    parser.add_argument(
        "--trust", action="store_true", help="read a version-1 results.jbl (a pickle, which can run code) you trust"
    )
    parser.add_argument("overrides", nargs="*", help="options of configs/export.yaml, e.g. smooth=none frame=ground")
    return parser.parse_intermixed_args(argv)


def export_options(overrides: list[str]) -> DictConfig:
    """configs/export.yaml composed with `key=value` overrides (unknown keys rejected in one sentence)."""
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose("export", overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        raise InputError(f"Export option rejected: {str(error).strip().splitlines()[0]}") from None


def export(
    run_path: Path,
    format_name: str,
    output: Path | None,
    frames: str | None,
    overrides: list[str],
    trust: bool = False,
) -> Path:
    """Write one export of a run; returns the file (or folder) written (`trust`: see load_results)."""
    options = export_options(overrides)
    smoothing = None if options.get("smooth") is None else build(options.smooth)
    run = ExportRun(run_path, smoothing, parse_frame_range(frames) if frames else None, trust)
    if smoothing is not None and run.header["config"].get("smooth") is not None:
        log.warning("The run was smoothed as it ran; smoothing it again (smooth=none exports it as written).")
    folder = run.folder / EXPORT_FOLDER
    if format_name == "phalp":
        return write_phalp(run, output or folder / f"{run.name}.pkl", write_frames=options.write_frames)
    if format_name == "amass":
        written = write_amass(run, output or folder / "amass", options.frame, options.gender, options.bridge)
        log.info("%d files", len(written))
        return output or folder / "amass"
    if format_name == "csv":
        return write_csv(run, output or folder / f"{run.name}.csv")
    return write_rrd(run, output or folder / f"{run.name}.rrd", options.meshes, options.jpeg_quality)


def main(argv: list[str] | None = None) -> int:
    """Export; on bad input print one sentence to stderr and return 2."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = export(args.run, args.format, args.output, args.frames, args.overrides, args.trust)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0
