"""Draw the overlay video of a finished run from its results file, streaming the video again frame by frame
(body meshes posed from the SMPL parameters in the results, with the body model the run used).

Example: python tools/render.py outputs/track/2026-11-21_09-17-28 [--video PATH] [--output overlay.mp4]
         [size=[640,480] ids=false states=[confirmed,lost] ...]   (keys of configs/render/default.yaml)
         python tools/render.py outputs/track/2026-11-21_09-17-28 --birdseye   (the tracks on the ground, from above)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from models.structures import InputError
from tracker.birdseye import write_birdseye
from tracker.build import build
from tracker.ground import estimate_ground
from tracker.io import load_results
from tracker.render import OverlayOptions, render_run
from tracker.schema import BIRDSEYE_FILE

RENDER_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "render" / "default.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options: the run (folder or results.phx), the video, the output and render overrides."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder or its results.phx")
    parser.add_argument("--video", type=Path, help="the input video (default: the one named in the results)")
    parser.add_argument("--output", type=Path, help="output mp4 (default: RUN/overlay.mp4 or render.file)")
    parser.add_argument(
        "--birdseye",
        action="store_true",
        help="instead of the overlay, draw the tracks on the ground plane from above: RUN/birdseye.png and .mp4",
    )
    parser.add_argument(
        "--trust", action="store_true", help="read a version-1 results.jbl (a pickle, which can run code) you trust"
    )
    parser.add_argument("overrides", nargs="*", help="render options as key=value, e.g. size=[640,480] meshes=false")
    return parser.parse_intermixed_args(argv)


def render_options(overrides: list[str]) -> OverlayOptions:
    """configs/render/default.yaml with `key=value` overrides applied (unknown keys rejected)."""
    config = OmegaConf.load(RENDER_CONFIG)
    OmegaConf.set_struct(config, True)
    try:
        config = OmegaConf.merge(config, OmegaConf.from_dotlist(overrides))
    except ConfigKeyError as error:
        raise InputError(f"Unknown render option '{error.key}': the keys are those of {RENDER_CONFIG}.") from None
    except OmegaConfBaseException as error:
        raise InputError(f"Render option rejected: {str(error).splitlines()[0]}.") from None
    return build(config)


def render_birdseye(run: Path, output: Path | None, trust: bool = False) -> list[Path]:
    """Write the bird's-eye PNG (and MP4 beside it) of a run's tracks on its estimated ground plane."""
    results = load_results(run, trust)
    ground = estimate_ground(results)
    png = output.with_suffix(".png") if output is not None else results.path.parent / BIRDSEYE_FILE
    return write_birdseye(results, ground, png, png.with_suffix(".mp4"))


def main(argv: list[str] | None = None) -> int:
    """Render; on bad input print one sentence to stderr and return 2."""
    args = parse_args(argv)
    try:
        if args.birdseye:
            outputs = render_birdseye(args.run, args.output, args.trust)
        else:
            outputs = [render_run(args.run, args.video, args.output, render_options(args.overrides), args.trust)]
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("wrote " + ", ".join(str(output) for output in outputs))
    return 0

