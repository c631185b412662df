"""Overlay rendering cost per frame on CPU, next to the cost of the tracking run it is drawn for.

Usage: python -m benchmarks.bench_render [--video ../shared/data/PETS09-S2L1] [--frames 200] [--out bench_render.json]
       [--png frame.png] [--threads N] [key=value ...]   (tracking overrides, e.g. regressor=hmr2 ...)

Tracks the first --frames frames of the video with the default configuration (public detections, the configured
regressor and body model) and the overlay off, then times, per frame, each part of the overlay on the same frames
and tracks: boxes and ids (OpenCV), posing the body meshes from the SMPL parameters in the results (skinning),
shading them through the torch rasterizer (full meshes, and simplified as render.mesh_cell asks, with the share of
pixels that simplifying changes), and H.264 encoding (several x264 presets). Every figure is the median of 3
passes. Prints a table and writes the figures to --out; --png saves one overlay frame with boxes, ids and meshes
(simplified, and full beside it as *.full.png).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra import compose, initialize_config_dir

from tracker.build import build
from tracker.io import load_results, open_source
from tracker.pipeline import run
from tracker.render import BodyMeshes, H264Writer, MeshLevels, MeshPainter, OverlayOptions, draw_overlay, track_meshes
from tracker.tracker import TrackedFrame

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("ultrafast", "superfast", "veryfast")
REPEATS = 3


def per_frame_ms(work, items: list, repeats: int = REPEATS) -> float:
    """Milliseconds per item of `work(item)` over all items: the median of `repeats` passes (a shared machine
    disturbs single passes)."""
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            work(item)
        passes.append(1000 * (time.perf_counter() - started) / len(items))
    return float(np.median(passes))


def faces_drawn(painter: MeshPainter, meshes: list[BodyMeshes]) -> float:
    """Mean faces per drawn body with the painter's levels of detail."""
    counts = []
    for mesh in meshes:
        rows = torch.isfinite(mesh.vertices).flatten(1).all(dim=1)
        focal = torch.as_tensor(mesh.focal)
        focal = focal[rows] if focal.ndim else focal
        counts += [len(level.faces) for level in painter.levels_of(mesh.faces, mesh.vertices[rows], focal)]
    return float(np.mean(counts))


def changed_pixels(image: np.ndarray, reference: np.ndarray) -> float:
    """Share of pixels whose largest channel difference exceeds 32 levels."""
    return float(np.mean(np.abs(image.astype(np.int16) - reference).max(axis=2) > 32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(ROOT.parent / "shared" / "data" / "PETS09-S2L1"))
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--out", default="bench_render.json")
    parser.add_argument("--png", help="save one overlay frame (boxes, ids, meshes) to this PNG")
    parser.add_argument(
        "--threads", type=int, default=OverlayOptions().threads, help="torch threads (default: render.threads; 0: own)"
    )
    parser.add_argument("overrides", nargs="*", help="tracking configuration overrides (key=value)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    run_ms = []
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        overrides = [f"video={args.video}", f"end={args.frames}", "render.enabled=false", *args.overrides]
        cfg = compose("track", overrides=overrides)
        for _ in range(REPEATS):
            with tempfile.TemporaryDirectory() as folder:
                summary = run(cfg, Path(folder), multirun=False)
                records = list(load_results(folder).frames())
            run_ms.append(1000 * summary["seconds"] / summary["frames"])
    source = open_source(args.video, end=args.frames)
    frames = [frame.image for frame in source]
    tracked = [TrackedFrame.from_record(record, frame) for record, frame in zip(records, source)]
    width, height = source.width, source.height
    body_model = build(cfg.body)
    options = OverlayOptions()
    full_painter = MeshPainter()
    levels = MeshLevels.of(body_model)
    painter = MeshPainter(levels=levels, max_cell_pixels=options.mesh_cell)
    shown = [np.isin(frame.states, options.states) for frame in tracked]
    people = np.mean([np.count_nonzero(mask) for mask in shown])
    pairs = list(zip(tracked, shown))

    rows: dict[str, float] = {}
    boxes_ms = per_frame_ms(lambda p: draw_overlay(p[0], OverlayOptions(meshes=False)), pairs)
    rows["draw boxes + ids (OpenCV)"] = boxes_ms
    meshes = [track_meshes(frame, mask, body_model) for frame, mask in pairs]
    skin_ms = per_frame_ms(lambda p: track_meshes(p[0], p[1], body_model), pairs)
    rows[f"pose meshes ({people:.1f} bodies x {body_model.num_vertices} vertices, skinning)"] = skin_ms
    with_meshes = list(zip(tracked, meshes))
    full_ms = per_frame_ms(lambda p: draw_overlay(p[0], options, full_painter, p[1]), with_meshes) - boxes_ms
    rows[f"shade full meshes ({body_model.num_faces} faces each, torch rasterizer)"] = full_ms
    meshes_ms = per_frame_ms(lambda p: draw_overlay(p[0], options, painter, p[1]), with_meshes) - boxes_ms
    faces = faces_drawn(painter, [mesh for mesh in meshes if mesh is not None])
    rows[f"shade simplified meshes (mesh_cell {options.mesh_cell:g} px: {faces:.0f} faces each)"] = meshes_ms
    changed = [changed_pixels(draw_overlay(t, options, painter, m), draw_overlay(t, options, full_painter, m))
               for t, m in with_meshes]  # fmt: skip
    rows["  pixels changed by simplifying (% of frame, > 32 levels)"] = 100 * float(np.mean(changed))
    for preset in PRESETS:
        with tempfile.TemporaryDirectory() as folder:
            video = H264Writer(Path(folder) / "bench.mp4", source.fps, (width, height), 23, preset)
            rows[f"H.264 encode ({preset}, crf 23)"] = per_frame_ms(video.write, frames)
            video.close()
            size_kb = (Path(folder) / "bench.mp4").stat().st_size / 1000
        rows[f"  file size kB per frame ({preset})"] = size_kb / (REPEATS * len(frames))
    run_ms = float(np.median(run_ms))
    encode_ms = rows[f"H.264 encode ({OverlayOptions().preset}, crf 23)"]
    boxes_total = boxes_ms + encode_ms
    full_total = boxes_total + skin_ms + meshes_ms

    table = [("part", "ms/frame", "share of run")]
    table.append((f"tracking run, overlay off ({summary['frames']} frames)", f"{run_ms:.2f}", "100%"))
    for name, value in rows.items():
        if name.startswith("  "):
            table.append((name, f"{value:.2f}", ""))
        else:
            table.append((name, f"{value:.2f}", f"{100 * value / run_ms:.0f}%"))
    preset = OverlayOptions().preset
    for name, value in ((f"overlay, boxes + ids ({preset})", boxes_total),
                        (f"overlay, boxes + ids + meshes ({preset})", full_total)):  # fmt: skip
        table.append((name, f"{value:.2f}", f"{100 * value / run_ms:.0f}%"))
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    threads = torch.get_num_threads()
    print(f"{Path(args.video).name}, {width}x{height}, {people:.1f} confirmed tracks/frame, torch threads {threads}")
    for row in table:
        print(f"{row[0].ljust(widths[0])}  {row[1].rjust(widths[1])}  {row[2].rjust(widths[2])}")
    Path(args.out).write_text(json.dumps({
        "video": args.video, "size": [width, height], "frames": summary["frames"], "confirmed_per_frame": people,
        "run_ms_per_frame": run_ms, "run_stage_seconds": summary["stage_seconds"], "overlay_ms_per_frame": rows,
        "overlay_boxes_ms": boxes_total, "overlay_boxes_meshes_ms": full_total,
    }, indent=2))  # fmt: skip
    if args.png:
        frame, mesh = with_meshes[len(with_meshes) // 2]
        for path, chosen in ((args.png, painter), (str(Path(args.png).with_suffix(".full.png")), full_painter)):
            cv2.imwrite(path, cv2.cvtColor(draw_overlay(frame, options, chosen, mesh), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
