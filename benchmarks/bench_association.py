"""Association benchmark: ms per frame at 5/20/50 people for phalanx's tracker and PHALP's own, fed the same cues.

Goal (issue 5): phalanx ≥ 50× faster than PHALP at 20 people. Scene: people walking at constant speed across a
1920×1080 frame (the motion of benchmarks/bench_tracker.py's `synthetic_walkers`: box noise, 5% missed detections,
scores 40–100), each with a constant random UV texture (256², a visible band of 60% of the texel columns), a pose
vector (226 values) and a depth, plus a little noise per frame on position, pose and log-depth. Both trackers get
the same detections, positions, depths, poses and textures every frame.

- phalanx: `Tracker.associate(detections, frame, cues)` as tools/track.py builds it with tracker=phalp and
  appearance=colour (PHALP's cost, the colour descriptor and per-track texture memories): the time includes the
  forecast, the cost, the assignment, the texture blending and re-encoding of the matched tracks' memories. The
  detections' own embeddings (the appearance stage, before the tracker) are timed apart ("det. encode").
- PHALP 0.1.3: its deep_sort `Tracker.predict()` + `Tracker.update(detections, frame_t, image_name, shot)` with its
  `NearestNeighborDistanceMetric` and predict='TPL', as its tracking loop calls them: the per-pair texture encoding of
  `get_uv_distance`, its texture blending, the pose transformer ('P') and ridge forecasts ('L') per track. What cannot
  run here is substituted, see benchmarks/phalp_reference.py: its networks (texture autoencoder, pose transformer) are
  its own classes with random weights, `.cuda()` is the CPU, scipy replaces the removed sklearn assignment, and its
  distance_type is EQ_010 (the only one 0.1.3 implements; EQ_019 differs in its betas only). Its pose vector is the
  226 values zero-padded to its 2048-value embedding, so pose distances equal phalanx's; its lifecycle (n_init,
  max_age) is set to phalanx's. The frame that creates PHALP's tracks is not timed; PHALP then runs until --frames
  frames are timed or --phalp-budget seconds are spent (at least one frame): at 50 people one frame takes minutes on
  one CPU thread.

Both run on the CPU with --threads torch threads (1 by default: the machine is shared). Times per frame: wall
median and CPU median (`time.process_time`, this process, all threads). Without phalp importable the PHALP columns
are skipped with the reason. Prints a table and writes it to --output (markdown) with a .json beside it.

    pip install -c constraints.txt --no-deps --target /tmp/phalp_pkgs phalp==0.1.3 scikit-learn==1.6.1 threadpoolctl
    python -m benchmarks.bench_association --phalp-path /tmp/phalp_pkgs
    python -m benchmarks.bench_association --people 5 --frames 5 --phalp-budget 20    # a short run
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from benchmarks.phalp_reference import UV_SIZE, PhalpAssociation, PhalpUnavailable, detection_data
from benchmarks.report import write_report
from models.appearance import AppearanceEncoder
from models.structures import Detections
from tracker.appearance import AppearanceMemory
from tracker.features import Cues
from tracker.tracker import Tracker

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SIZE = (1920, 1080)  # width, height
POSE_VALUES = 226  # phalanx's pose cue: root and joint rotation matrices and betas
VISIBLE_COLUMNS = 0.6  # share of each person's UV texel columns seen


@dataclass
class CrowdFrame:
    """One frame of the synthetic crowd: the detected people (ids, rows of the crowd's arrays) and their cues."""

    people: np.ndarray
    detections: Detections
    point: np.ndarray
    log_depth: np.ndarray
    pose: np.ndarray


@dataclass
class Crowd:
    """People walking through a frame, with constant UV textures (P×4×S×S, visibility 0/1) and per-frame cues."""

    textures: torch.Tensor
    frames: list[CrowdFrame]


def walking_crowd(people: int, frames: int, uv_size: int, seed: int = 0) -> Crowd:
    """`people` walking at constant speed (bench_tracker's synthetic walkers) with textures, poses and depths."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([100, 100], [1800, 900], size=(people, 2))
    velocity = rng.normal(0, 3, size=(people, 2))
    size = np.stack([rng.uniform(30, 60, people), rng.uniform(80, 160, people)], axis=1)
    log_depth = np.log(rng.uniform(3.0, 15.0, people))
    pose = rng.normal(0, 0.1, size=(people, POSE_VALUES))
    textures = random_textures(rng, people, uv_size)
    out = []
    for t in range(frames):
        centre = start + velocity * t + rng.normal(0, 1.5, size=(people, 2))
        seen = np.flatnonzero(rng.random(people) > 0.05)
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)[seen]
        detections = Detections(boxes.astype(np.float32), rng.uniform(40, 100, len(seen)).astype(np.float32))
        out.append(
            CrowdFrame(
                people=seen,
                detections=detections,
                point=centre[seen] / max(IMAGE_SIZE),
                log_depth=log_depth[seen] + rng.normal(0, 0.01, len(seen)),
                pose=pose[seen] + rng.normal(0, 0.01, size=(len(seen), POSE_VALUES)),
            )
        )
    return Crowd(textures, out)


def random_textures(rng: np.random.Generator, people: int, uv_size: int) -> torch.Tensor:
    """P×4×S×S textures: a base colour per person with texel noise, seen on a band of columns (RGB 0 elsewhere)."""
    colour = rng.uniform(0.1, 0.9, size=(people, 3, 1, 1)) + rng.normal(0, 0.05, size=(people, 3, uv_size, uv_size))
    columns = np.arange(uv_size)[None, :] - rng.integers(0, uv_size, size=(people, 1))
    visible = ((columns % uv_size) < VISIBLE_COLUMNS * uv_size)[:, None, None, :].repeat(uv_size, axis=2)
    rgb = np.clip(colour, 0, 1) * visible
    return torch.from_numpy(np.concatenate([rgb, visible], axis=1).astype(np.float32))


def phalanx_config() -> DictConfig:
    """tools/track.py's configuration with PHALP's cost and the colour appearance cue."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("track", overrides=["tracker=phalp", "appearance=colour"])


def phalanx_times(cfg: DictConfig, encoder: AppearanceEncoder, crowd: Crowd, warmup: int) -> dict[str, list[float]]:
    """Per-frame `Tracker.update` wall and CPU ms after `warmup` frames, and the detections' encoding ms apart."""
    memory = AppearanceMemory(encoder, cfg.appearance.memory_blend_rate)
    thresholds = instantiate(cfg.detector.public.thresholds)
    tracker: Tracker = instantiate(cfg.tracker, thresholds=thresholds, appearance=memory)
    times: dict[str, list[float]] = {"wall_ms": [], "cpu_ms": [], "encode_ms": [], "tracks": []}
    for frame, scene in enumerate(crowd.frames, start=1):
        texture = crowd.textures[torch.as_tensor(scene.people)]
        started = time.perf_counter()
        appearance = encoder.encode(texture)
        encoded = time.perf_counter()
        cues = Cues(scene.point, scene.log_depth, scene.pose, appearance, texture)
        tracks = len(tracker.tracks)
        wall, cpu = time.perf_counter(), time.process_time()
        tracker.associate(scene.detections, frame, cues)
        if frame > warmup:
            times["wall_ms"].append((time.perf_counter() - wall) * 1000)
            times["cpu_ms"].append((time.process_time() - cpu) * 1000)
            times["encode_ms"].append((encoded - started) * 1000)
            times["tracks"].append(tracks)
    return times


def phalp_times(
    cfg: DictConfig, phalp_path: str | None, crowd: Crowd, frames: int, budget_s: float
) -> dict[str, list[float]]:
    """Per-frame wall and CPU ms of PHALP's predict + update from the second frame on, until `frames` frames are
    timed or `budget_s` seconds are spent; also the track×detection pairs it compared."""
    association = PhalpAssociation(phalp_path, n_init=cfg.tracker.n_init, max_age=cfg.tracker.max_age)
    uv = phalp_uv_maps(crowd.textures)
    times: dict[str, list[float]] = {"wall_ms": [], "cpu_ms": [], "pairs": []}
    started = time.perf_counter()
    for frame, scene in enumerate(crowd.frames[: frames + 1], start=1):
        if frame > 2 and time.perf_counter() - started > budget_s:
            break
        data = [
            detection_data(
                box, float(score) / 100, point, float(np.exp(depth)), pose, uv[person], frame, int(person), IMAGE_SIZE
            )
            for box, score, point, depth, pose, person in zip(
                scene.detections.boxes, scene.detections.scores, scene.point, scene.log_depth, scene.pose, scene.people
            )
        ]
        detections = association.detections(data)
        pairs = association.live_tracks * len(detections)
        wall, cpu = time.perf_counter(), time.process_time()
        association.step(detections, frame)
        if frame > 1:
            times["wall_ms"].append((time.perf_counter() - wall) * 1000)
            times["cpu_ms"].append((time.process_time() - cpu) * 1000)
            times["pairs"].append(pairs)
    return times


def phalp_uv_maps(textures: torch.Tensor) -> list[np.ndarray]:
    """The textures in PHALP's UV convention: RGB zero where unseen, visibility −1 (unseen) or 1 (seen)."""
    visible = textures[:, 3:] > 0.5
    maps = torch.cat([textures[:, :3] * visible, torch.where(visible, 1.0, -1.0)], dim=1)
    return list(maps.numpy())


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--frames", type=int, default=30, help="timed frames per crowd size")
    parser.add_argument("--warmup", type=int, default=5, help="phalanx frames run before timing")
    parser.add_argument("--phalp-budget", type=float, default=120.0, help="seconds of PHALP frames per crowd size")
    parser.add_argument("--phalp-path", default=None, help="folder holding phalp 0.1.3 (added to sys.path)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's choice)")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_association.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = phalanx_config()
    encoder = instantiate(cfg.appearance.encoder)(body_model=instantiate(cfg.body))
    uv_size = cfg.appearance.encoder.uv_size
    phalp_skipped = None
    if uv_size != UV_SIZE:
        phalp_skipped = f"PHALP needs {UV_SIZE}² UV maps, the configuration has {uv_size}²."
    rows = []
    for people in args.people:
        crowd = walking_crowd(people, args.warmup + args.frames, uv_size)
        ours = phalanx_times(cfg, encoder, crowd, args.warmup)
        row = {
            "people": people,
            "phalanx_frames": len(ours["wall_ms"]),
            "phalanx_tracks_mean": float(np.mean(ours["tracks"])),
            "phalanx_median_ms": median(ours["wall_ms"]),
            "phalanx_cpu_median_ms": median(ours["cpu_ms"]),
            "phalanx_detection_encode_median_ms": median(ours["encode_ms"]),
        }
        if phalp_skipped is None:
            try:
                theirs = phalp_times(cfg, args.phalp_path, crowd, args.frames, args.phalp_budget)
            except PhalpUnavailable as error:
                phalp_skipped = str(error)
            else:
                row.update(
                    {
                        "phalp_frames": len(theirs["wall_ms"]),
                        "phalp_pairs_mean": float(np.mean(theirs["pairs"])),
                        "phalp_median_ms": median(theirs["wall_ms"]),
                        "phalp_cpu_median_ms": median(theirs["cpu_ms"]),
                        "speed_up": median(theirs["wall_ms"]) / row["phalanx_median_ms"],
                        "cpu_speed_up": median(theirs["cpu_ms"]) / row["phalanx_cpu_median_ms"],
                    }
                )
        rows.append(row)
        print(f"{people} people done", flush=True)

    setup = (
        f"Association per frame, synthetic walking crowd ({IMAGE_SIZE[0]}×{IMAGE_SIZE[1]}, {uv_size}² UV textures), "
        f"phalanx tracker=phalp appearance=colour vs PHALP 0.1.3 deep_sort (predict TPL, EQ_010, random-weight "
        f"networks, CPU); {args.warmup} + {args.frames} phalanx frames, PHALP up to {args.frames} frames or "
        f"{args.phalp_budget:g} s per size; {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    if phalp_skipped is not None:
        setup += f"\n\nPHALP skipped: {phalp_skipped}"
    write_report(args.output, setup, table(rows), rows)


def table(rows: list[dict]) -> str:
    """The markdown table of the results; PHALP cells read '-' when it was skipped."""

    def cell(row: dict, key: str, fmt: str, unit: str = "") -> str:
        return "-" if row.get(key) is None else format(row[key], fmt) + unit

    out = (
        "| people | phalanx ms/frame (median) | PHALP ms/frame (median) | speed-up | phalanx CPU ms | PHALP CPU ms | "
        "CPU speed-up | phalanx det. encode ms | PHALP frames timed | PHALP pairs/frame |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    for row in rows:
        out += (
            f"| {row['people']} | {cell(row, 'phalanx_median_ms', '.2f')} | {cell(row, 'phalp_median_ms', ',.0f')} | "
            f"{cell(row, 'speed_up', ',.0f', '×')} | {cell(row, 'phalanx_cpu_median_ms', '.2f')} | "
            f"{cell(row, 'phalp_cpu_median_ms', ',.0f')} | {cell(row, 'cpu_speed_up', ',.0f', '×')} | "
            f"{cell(row, 'phalanx_detection_encode_median_ms', '.2f')} | {cell(row, 'phalp_frames', 'd')} | "
            f"{cell(row, 'phalp_pairs_mean', '.0f')} |\n"
        )
    return out


if __name__ == "__main__":
    main()
