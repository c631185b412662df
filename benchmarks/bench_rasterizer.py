"""Rasterizer benchmark: ms per mesh for a batch of body meshes rasterized at 256×256, per backend.

Texture sampling aims at <= 5 ms per person at 256² in batches of 8 for the whole sampler, so the rasterizer must
cost well under that. Meshes: a synthetic closed SMPL-sized mesh (6,890 vertices, 13,776 faces: a bumpy
ellipsoid person-sized 0.44 × 1.7 m) and, when present, the project's body model file in its template pose; each
mesh of the batch turned by a different yaw and framed so that the person fills about 230 of the 256 pixels.
Prints a table and writes it to --output (markdown) with a .json beside it; also times the UV texel map of the
body model's layout (built once per body model, then cached).

    python -m benchmarks.bench_rasterizer                         # torch backend on the CPU, default threads
    python -m benchmarks.bench_rasterizer --threads 1 --repeats 30
    python -m benchmarks.bench_rasterizer --device cuda           # adds PyTorch3D when it imports

Times are wall time of `rasterize` (projection included) per batch: the median over repeats and the best repeat
(on a shared machine the best repeat is the least disturbed one), divided by the batch size for ms/mesh; and the
best CPU time of this process per batch (all its threads), which other processes on the machine disturb less.
"""
from __future__ import annotations

import argparse
import math
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks.report import time_call, write_report
from models.structures import InputError
from models.texture.rasterizer import Rasterizer
from models.texture.torch_rasterizer import TorchRasterizer
from models.texture.uv_map import uv_texel_map

ROOT = Path(__file__).resolve().parents[1]
BODY_MODEL = ROOT / "models" / "body" / "data" / "open_body.pkl"
PERSON_PIXELS = 230.0  # person height in the crop
CAMERA_DISTANCE = 10.0  # metres; HMR2-like crops see people nearly orthographically


def smpl_sized_mesh() -> tuple[torch.Tensor, torch.Tensor]:
    """A closed bumpy ellipsoid with SMPL's counts (82 rings × 84 segments + 2 poles = 6,890 vertices, 13,776
    faces), counter-clockwise seen from outside like SMPL."""
    rings, segments = 82, 84
    theta = torch.linspace(0, math.pi, rings + 2)[1:-1, None]
    phi = torch.arange(segments)[None, :] * (2 * math.pi / segments)
    bump = 1 + 0.15 * torch.sin(5 * phi) * torch.sin(3 * theta)
    ring = torch.stack(
        [0.22 * bump * torch.sin(theta) * torch.cos(phi), -0.85 * torch.cos(theta).expand(-1, segments),
         0.15 * bump * torch.sin(theta) * torch.sin(phi)], -1
    ).reshape(-1, 3)
    vertices = torch.cat([torch.tensor([[0.0, -0.85, 0.0]]), ring, torch.tensor([[0.0, 0.85, 0.0]])])
    r, s = torch.arange(rings - 1)[:, None], torch.arange(segments)[None, :]
    a, b = 1 + r * segments + s, 1 + r * segments + (s + 1) % segments
    quads = torch.stack([a, b + segments, b, a, a + segments, b + segments], -1).reshape(-1, 3)
    s = torch.arange(segments)
    last_ring = 1 + (rings - 1) * segments
    top = torch.stack([torch.zeros_like(s), 1 + s, 1 + (s + 1) % segments], -1)
    bottom = torch.stack([torch.full_like(s, len(vertices) - 1), last_ring + (s + 1) % segments, last_ring + s], -1)
    return vertices, torch.cat([top, quads, bottom])


def body_model_mesh(path: Path) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Template vertices (y flipped to point down, as in the camera frame), faces, and the UV layout of a file."""
    from models.body.model_file import load_model_arrays

    arrays = load_model_arrays(path)
    vertices = torch.as_tensor(np.asarray(arrays["v_template"]), dtype=torch.float32) * torch.tensor([1.0, -1.0, -1.0])
    faces = torch.as_tensor(np.asarray(arrays["f"]).astype(np.int64))
    return vertices, faces, np.asarray(arrays["vt"]), np.asarray(arrays["ft"])


def framed_batch(vertices: torch.Tensor, batch: int, size: int) -> tuple[torch.Tensor, float, torch.Tensor]:
    """`batch` copies turned by different yaws, centred CAMERA_DISTANCE ahead; the focal that makes them
    PERSON_PIXELS tall; the principal point at the crop centre."""
    centred = vertices - (vertices.amax(0) + vertices.amin(0)) / 2
    yaw = torch.linspace(0, 2 * math.pi, batch + 1)[:-1]
    cos, sin = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
    x, y, z = centred.unbind(-1)
    turned = torch.stack([cos * x + sin * z, y.expand(batch, -1), -sin * x + cos * z], -1)
    focal = PERSON_PIXELS * CAMERA_DISTANCE / float(centred[:, 1].amax() - centred[:, 1].amin())
    return turned + torch.tensor([0.0, 0.0, CAMERA_DISTANCE]), focal, torch.tensor([size / 2, size / 2])


def time_backend(rasterizer: Rasterizer, vertices: torch.Tensor, faces: torch.Tensor, focal: float,
                 centre: torch.Tensor, size: int, repeats: int) -> dict[str, float]:
    """Median and best wall ms per batch, the best CPU ms of this process per batch, and the share covered."""
    device = vertices.device
    run = partial(rasterizer.rasterize, vertices, faces, focal, centre.to(device), (size, size))
    timing, fragments = time_call(run, repeats, device)
    return {**timing, "covered": float(fragments.covered.float().mean())}


def backends(device: torch.device) -> dict[str, Rasterizer]:
    """The backends to time: torch (plain and with back-face culling), and PyTorch3D when it imports."""
    chosen: dict[str, Rasterizer] = {"torch": TorchRasterizer(), "torch (cull back faces)": TorchRasterizer(True)}
    try:
        from models.texture.pytorch3d_rasterizer import PyTorch3DRasterizer

        chosen["pytorch3d"] = PyTorch3DRasterizer()
    except InputError as error:
        print(f"pytorch3d skipped: {error}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--body-model", type=Path, default=BODY_MODEL, help="SMPL-format file; skipped if absent")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_rasterizer.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    meshes = {"SMPL-sized synthetic": smpl_sized_mesh()}
    uv_layout = None
    if args.body_model.exists():
        vertices, faces, vt, ft = body_model_mesh(args.body_model)
        meshes[args.body_model.name] = (vertices, faces)
        uv_layout = (vt, ft)

    rows, chosen = [], backends(device)
    for mesh_name, (vertices, faces) in meshes.items():
        batch_vertices, focal, centre = framed_batch(vertices, args.batch, args.size)
        for backend_name, rasterizer in chosen.items():
            timing = time_backend(rasterizer, batch_vertices.to(device), faces.to(device), focal, centre,
                                  args.size, args.repeats)
            rows.append({"mesh": mesh_name, "vertices": len(vertices), "faces": len(faces), "backend": backend_name,
                         **timing, "median_ms_per_mesh": timing["median_ms"] / args.batch,
                         "best_ms_per_mesh": timing["best_ms"] / args.batch})

    setup = (f"Rasterizer, batch {args.batch} at {args.size}×{args.size}, device {args.device}, "
             f"{torch.get_num_threads()} torch threads, {args.repeats} repeats, torch {torch.__version__}")
    table = "| mesh | V | F | backend | covered | ms/batch (median) | ms/mesh (median) | ms/mesh (best) |"
    table += " CPU ms/mesh (best) |\n| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n"
    for row in rows:
        table += (f"| {row['mesh']} | {row['vertices']:,} | {row['faces']:,} | {row['backend']} | "
                  f"{row['covered']:.1%} | {row['median_ms']:.1f} | {row['median_ms_per_mesh']:.2f} | "
                  f"{row['best_ms_per_mesh']:.2f} | {row['best_cpu_ms'] / args.batch:.2f} |\n")
    if uv_layout is not None:
        start = time.perf_counter()
        texels = uv_texel_map(*uv_layout, size=256)
        uv_ms = (time.perf_counter() - start) * 1000
        table += (f"\nUV texel map of {args.body_model.name} at 256²: {uv_ms:.0f} ms once (then cached), "
                  f"{float(texels.covered.float().mean()):.1%} of texels covered.\n")
    write_report(args.output, setup, table, rows)


if __name__ == "__main__":
    main()
