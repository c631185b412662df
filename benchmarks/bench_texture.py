"""Texture sampler benchmark: ms per person to sample B×4×S×S UV textures from 256×256 crops, per rasterizer.

Goal (issue 5): <= 5 ms per person on the CPU at 256² in batches of 8 for the torch backend. People: the
project's body model in its template pose, each turned by a different yaw, framed so that it fills about 230 of
the 256 pixels (as the regressor crops do); images are random RGB. Backends: torch, and PyTorch3D when it imports.
For each backend it times the whole `TextureSampler.sample` and its rasterization alone, so the table shows what
the sampler adds; the torch backend also runs with the visibility depth map at half resolution (`depth_map_scale`).
Prints a table and writes it to --output (markdown) with a .json beside it.

    python -m benchmarks.bench_texture                  # one torch thread (the default), CPU
    python -m benchmarks.bench_texture --threads 2 --repeats 30
    python -m benchmarks.bench_texture --device cuda    # PyTorch3D joins when it imports

Times per batch: wall median and best over repeats, and the best CPU time of this process (all its threads;
other processes on a shared machine disturb it less than wall time), each divided by the batch size.
"""
from __future__ import annotations

import argparse
import math
from functools import partial
from pathlib import Path

import torch

from benchmarks.report import time_call, write_report
from models.body import BodyModel, load_body_model
from models.regressors.template import template_pose
from models.structures import InputError
from models.texture.rasterizer import Rasterizer
from models.texture.sampler import TextureSampler
from models.texture.torch_rasterizer import TorchRasterizer

ROOT = Path(__file__).resolve().parents[1]
PERSON_PIXELS = 230.0  # person height in the crop
CAMERA_DISTANCE = 10.0  # metres


def turned_people(body_model: BodyModel, batch: int, size: int) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Camera-frame vertices of `batch` template bodies turned by evenly spread yaws, CAMERA_DISTANCE ahead; the
    focal length that makes them PERSON_PIXELS tall; the principal point at the image centre."""
    pose = template_pose(batch)
    yaw = torch.linspace(0, 2 * math.pi, batch + 1)[:-1]
    cos, sin, zero, one = torch.cos(yaw), torch.sin(yaw), torch.zeros(batch), torch.ones(batch)
    turn = torch.stack([cos, zero, sin, zero, one, zero, -sin, zero, cos], -1).reshape(batch, 1, 3, 3)
    with torch.no_grad():
        vertices = body_model(turn @ pose["global_orient"], pose["body_pose"], pose["betas"]).vertices
    centre = (vertices.amax(1) + vertices.amin(1)) / 2
    height = float(vertices[0, :, 1].amax() - vertices[0, :, 1].amin())
    placed = vertices - centre[:, None] + torch.tensor([0.0, 0.0, CAMERA_DISTANCE])
    return placed, PERSON_PIXELS * CAMERA_DISTANCE / height, torch.tensor([size / 2, size / 2])


def backends() -> dict[str, tuple[Rasterizer, float]]:
    """(rasterizer, depth map scale) by name: torch at full and half depth-map resolution, and PyTorch3D when it
    imports."""
    chosen: dict[str, tuple[Rasterizer, float]] = {
        "torch": (TorchRasterizer(), 1.0),
        "torch, depth map ½": (TorchRasterizer(), 0.5),
    }
    try:
        from models.texture.pytorch3d_rasterizer import PyTorch3DRasterizer

        chosen["pytorch3d"] = (PyTorch3DRasterizer(), 1.0)
    except InputError as error:
        print(f"pytorch3d skipped: {error}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels")
    parser.add_argument("--uv-size", type=int, default=256, help="UV texture side in texels")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's choice)")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_texture.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    body_model = load_body_model(device=device)
    vertices, focal, centre = turned_people(body_model, args.batch, args.size)
    vertices, centre = vertices.to(device), centre.to(device)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    faces = body_model.faces.to(device)

    rows = []
    for name, (rasterizer, scale) in backends().items():
        sampler = TextureSampler(body_model, rasterizer, uv_size=args.uv_size, depth_map_scale=scale)
        whole, textures = time_call(partial(sampler.sample, images, vertices, focal, centre), args.repeats, device)
        depth_size = (round(args.size * scale), round(args.size * scale))
        rasterize = partial(rasterizer.rasterize, vertices, faces, focal * scale, centre * scale, depth_size)
        raster, _ = time_call(rasterize, args.repeats, device)
        visible = float(textures[:, 3].sum() / (len(sampler.texel_index) * args.batch))
        rows.append({"backend": name, "visible_share": visible,
                     **{f"sample_{key}": value / args.batch for key, value in whole.items()},
                     **{f"rasterize_{key}": value / args.batch for key, value in raster.items()}})

    setup = (f"Texture sampling, batch {args.batch}, {args.size}² crops -> {args.uv_size}² UV textures, "
             f"{body_model.num_vertices:,} vertices, {body_model.num_faces:,} faces, device {args.device}, "
             f"{torch.get_num_threads()} torch threads, {args.repeats} repeats, torch {torch.__version__}")
    table = ("| backend | visible texels | sample ms/person (median) | (best) | CPU ms/person (best) | "
             "of which rasterize CPU ms/person (best) | sampler's own CPU ms/person |\n"
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for row in rows:
        table += (f"| {row['backend']} | {row['visible_share']:.1%} | {row['sample_median_ms']:.2f} | "
                  f"{row['sample_best_ms']:.2f} | {row['sample_best_cpu_ms']:.2f} | "
                  f"{row['rasterize_best_cpu_ms']:.2f} | "
                  f"{row['sample_best_cpu_ms'] - row['rasterize_best_cpu_ms']:.2f} |\n")
    write_report(args.output, setup, table, rows)


if __name__ == "__main__":
    main()
