"""Association benchmark: ms per frame at 5/20/50 people of phalanx's default tracker, the motion-only tracker,
the colour-texture configuration and PHALP 0.1.3's own tracker, side by side on the same synthetic crowd.

Targets: the default configuration's association ≤ 5 ms per frame at 20 people on 2 CPU cores (issue 11), and
phalanx ≥ 50× faster than PHALP at 20 people (issue 5).

Scene (seeded): people walking at constant speed across a 1920×1080 frame (the motion of benchmarks/bench_tracker.py's
`synthetic_walkers`: box noise, 5% missed detections), scores uniform in [0, 1] as the default reads public
detections (ranks: a quarter fall below the thresholds, weak detections that only extend confirmed tracks). Half
the people are hidden once for 10–40 frames and reappear displaced sideways by 1.2–2 box widths (beyond any overlap
with their Kalman box), so that lost tracks must be re-identified. Each person has a constant random appearance
embedding (a non-negative unit vector of the CropEmbedder's size, as its pooled ReLU features are), a constant
random UV texture (256², a visible band of 60% of the texel columns), a pose vector (226 values) and a depth, plus a
little noise per frame on position, pose, log-depth and embedding. Every column gets the same detections.

- default: `Tracker.associate(detections, frame, cues)` of `compose("track")` as tools/track.py builds it
  (tracker=phalp: PHALP's cost, the appearance gate, the re-identification stage; appearance=auto's learned
  model, configs/appearance/mobilenet.yaml, whose memory tracker/pipeline.py's `build_memory` builds) fed the
  synthetic embeddings. Its "det. encode" is the CropEmbedder's embedding of the frame's boxes (a noise image:
  MobileNetV2 costs the same on any pixels), the appearance stage that runs before the tracker.
- motion-only: tracker=default appearance=none, the detections' positions and nothing else (Kalman box overlap).
- colour: appearance=colour (the colour descriptor and per-track texture memories, re-encoded when they change);
  its "det. encode" is the colour descriptor of the detections' textures.
- PHALP 0.1.3: its deep_sort `Tracker.predict()` + `Tracker.update(detections, frame_t, image_name, shot)` with its
  `NearestNeighborDistanceMetric` and predict='TPL', as its tracking loop calls them: the per-pair texture encoding of
  `get_uv_distance`, its texture blending, the pose transformer ('P') and ridge forecasts ('L') per track. What cannot
  run here is substituted, see benchmarks/phalp_reference.py: its networks (texture autoencoder, pose transformer) are
  its own classes with random weights, `.cuda()` is the CPU, scipy replaces the removed sklearn assignment, and its
  distance_type is EQ_010 (the only one 0.1.3 implements; EQ_019 differs in its betas only). Its pose vector is the
  226 values zero-padded to its 2048-value embedding, so pose distances equal phalanx's; its lifecycle (n_init,
  max_age) is set to phalanx's. The frame that creates PHALP's tracks is not timed; PHALP then runs until --frames
  frames are timed or --phalp-budget seconds are spent (at least one frame): at 50 people one frame takes minutes on
  one CPU thread. Its speed-up is against the colour column, which compares the same textures.

phalanx's columns time `Tracker.associate` only (forecast, costs, staged assignment, re-identification, memory
updates) over --frames frames after --warmup frames (long enough for the hidden people's tracks to be lost and
re-found). Also counted over the timed frames: tracks re-found after ≥ 10 frames lost, and identity switches (a
track matched to another person than before). Everything runs on the CPU with --threads torch threads (1 by
default: the machine is shared). Times per frame: wall median and CPU median (`time.process_time`, this process,
all threads). Without phalp importable the PHALP columns are skipped with the reason. Prints a table and writes it
to --output (markdown) with a .json beside it.

    python -m benchmarks.bench_association                                       # phalanx's columns
    pip install -c constraints.txt --no-deps --target /tmp/phalp_pkgs phalp==0.1.3 scikit-learn==1.6.1 threadpoolctl
    python -m benchmarks.bench_association --phalp-path /tmp/phalp_pkgs
    python -m benchmarks.bench_association --people 5 --frames 5 --phalp-budget 20    # a short run
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from benchmarks.phalp_reference import UV_SIZE, PhalpAssociation, PhalpUnavailable, detection_data
from benchmarks.report import write_report
from models.appearance import AppearanceEncoder, CropEmbedder
from models.appearance.mobilenet import MobileNetV2
from models.structures import Detections, PersonBatch
from tracker.build import build
from tracker.features import Cues
from tracker.pipeline import build_memory
from tracker.tracker import Tracker

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SIZE = (1920, 1080)  # width, height
SCALE = float(max(IMAGE_SIZE))  # cues' positions are in units of the frame's longer side
POSE_VALUES = 226  # phalanx's pose cue: root and joint rotation matrices and betas
VISIBLE_COLUMNS = 0.6  # share of each person's UV texel columns seen
HIDDEN_SHARE = 0.5  # people hidden once
HIDDEN_FRAMES = (10, 40)  # how long they stay hidden
DISPLACEMENT = (1.2, 2.0)  # box widths they reappear away from where they would have been
EMBEDDING_NOISE = 0.02  # per-component noise of a detection's embedding around its person's
REFOUND_AFTER = 10  # frames lost after which a match counts as a re-found track


@dataclass
class CrowdFrame:
    """One frame of the synthetic crowd: the detected people (ids, rows of the crowd's arrays) and their cues."""

    people: np.ndarray
    detections: Detections
    point: np.ndarray
    log_depth: np.ndarray
    pose: np.ndarray
    embedding: torch.Tensor


@dataclass
class Crowd:
    """People walking through a frame, with constant UV textures (P×4×S×S, visibility 0/1) and per-frame cues."""

    textures: torch.Tensor
    frames: list[CrowdFrame]


def walking_crowd(people: int, frames: int, uv_size: int, embedding_size: int, seed: int = 0) -> Crowd:
    """`people` walking at constant speed (bench_tracker's synthetic walkers), some hidden for a while and
    reappearing displaced, with textures, embeddings, poses and depths."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([100, 100], [1800, 900], size=(people, 2))
    velocity = rng.normal(0, 3, size=(people, 2))
    size = np.stack([rng.uniform(30, 60, people), rng.uniform(80, 160, people)], axis=1)
    log_depth = np.log(rng.uniform(3.0, 15.0, people))
    pose = rng.normal(0, 0.1, size=(people, POSE_VALUES))
    textures = random_textures(rng, people, uv_size)
    identity = np.abs(rng.normal(size=(people, embedding_size)))
    identity /= np.linalg.norm(identity, axis=1, keepdims=True)
    hidden_from = np.where(rng.random(people) < HIDDEN_SHARE, rng.integers(5, max(frames - 10, 6), people), frames)
    hidden_to = hidden_from + rng.integers(HIDDEN_FRAMES[0], HIDDEN_FRAMES[1] + 1, people)
    sideways = rng.choice([-1.0, 1.0], people) * rng.uniform(*DISPLACEMENT, people) * size[:, 0]
    offset = np.stack([sideways, rng.normal(0, 0.1, people) * size[:, 1]], axis=1)
    out = []
    for t in range(frames):
        centre = start + velocity * t + (t >= hidden_to)[:, None] * offset + rng.normal(0, 1.5, size=(people, 2))
        hidden = (t >= hidden_from) & (t < hidden_to)
        seen = np.flatnonzero((rng.random(people) > 0.05) & ~hidden)
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)[seen]
        detections = Detections(boxes.astype(np.float32), rng.random(len(seen)).astype(np.float32))
        embedding = identity[seen] + rng.normal(0, EMBEDDING_NOISE, size=(len(seen), embedding_size))
        out.append(
            CrowdFrame(
                people=seen,
                detections=detections,
                point=centre[seen] / SCALE,
                log_depth=log_depth[seen] + rng.normal(0, 0.01, len(seen)),
                pose=pose[seen] + rng.normal(0, 0.01, size=(len(seen), POSE_VALUES)),
                embedding=torch.nn.functional.normalize(torch.from_numpy(embedding).float(), dim=1),
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


def configurations() -> dict[str, DictConfig]:
    """tools/track.py's configurations of the columns: the default, motion only, the colour appearance cue."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return {
            "default": compose("track"),
            "motion": compose("track", overrides=["tracker=default", "appearance=none"]),
            "colour": compose("track", overrides=["appearance=colour"]),
        }


def learned_appearance(cfg: DictConfig) -> DictConfig:
    """The default's appearance settings as they are with the MobileNetV2 weights installed (appearance=auto's
    preferred model): the benchmark feeds synthetic embeddings, so it needs no weights."""
    settings = cfg.appearance
    return settings.preferred if "preferred" in settings else settings


def crop_embedder(settings: DictConfig) -> CropEmbedder:
    """The configured CropEmbedder with random weights: its embedding size, and its cost per box."""
    return build(settings.encoder)(device="cpu", network=MobileNetV2())


def embed_boxes(embedder: CropEmbedder, image: np.ndarray, detections: Detections) -> torch.Tensor:
    """The CropEmbedder's embeddings of `detections` in one frame (no person masks)."""
    boxes = torch.from_numpy(detections.boxes)
    count = len(boxes)
    people = PersonBatch(
        crops=torch.zeros((count, 3, 1, 1)),
        boxes=boxes,
        center=(boxes[:, :2] + boxes[:, 2:]) / 2,
        size=(boxes[:, 2:] - boxes[:, :2]).amax(dim=1),
        frame_ids=torch.zeros(count, dtype=torch.long),
        det_ids=torch.arange(count),
        image_size=torch.tensor([IMAGE_SIZE] * count),
    )
    return embedder.embed([image], people)


def association_times(
    tracker: Tracker, crowd: Crowd, warmup: int, cues: Callable[[CrowdFrame], tuple[Cues, float | None]]
) -> dict[str, list[float]]:
    """Per-frame `Tracker.associate` wall and CPU ms after `warmup` frames, the detections' encoding ms apart
    (`cues` gives a frame's cues and how long encoding them took, None when nothing was encoded), and counts of
    tracks re-found after a gap and of identity switches."""
    times: dict[str, list[float]] = {"wall_ms": [], "cpu_ms": [], "encode_ms": [], "tracks": []}
    person: dict[int, int] = {}
    refound = switches = 0
    for frame, scene in enumerate(crowd.frames, start=1):
        frame_cues, encode_ms = cues(scene)
        lost = {t.track_id: t.frames_since_update for t in tracker.tracks}
        wall, cpu = time.perf_counter(), time.process_time()
        matched = tracker.associate(scene.detections, frame, frame_cues)
        wall, cpu = (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000
        timed = frame > warmup
        for track, det in zip(tracker.tracks, matched):
            if det < 0:
                continue
            who = int(scene.people[det])
            if timed:
                refound += lost.get(track.track_id, 0) >= REFOUND_AFTER
                switches += person.get(track.track_id, who) != who
            person[track.track_id] = who
        if timed:
            times["wall_ms"].append(wall)
            times["cpu_ms"].append(cpu)
            times["tracks"].append(len(lost))
            if encode_ms is not None:
                times["encode_ms"].append(encode_ms)
    times["refound"], times["switches"] = [refound], [switches]
    return times


def default_times(cfg: DictConfig, crowd: Crowd, warmup: int) -> dict[str, list[float]]:
    """The default configuration's association on the synthetic embeddings; its encoding column is the
    CropEmbedder's cost on the timed frames' boxes."""
    settings = learned_appearance(cfg)
    tracker = build(cfg.tracker, thresholds=build(cfg.detector.public.thresholds), appearance=build_memory(settings))

    def cues(scene: CrowdFrame) -> tuple[Cues, None]:
        return Cues(scene.point, scene.log_depth, scene.pose, scene.embedding, scale=SCALE), None

    times = association_times(tracker, crowd, warmup, cues)
    embedder = crop_embedder(settings)
    image = np.random.default_rng(0).integers(0, 256, size=(IMAGE_SIZE[1], IMAGE_SIZE[0], 3), dtype=np.uint8)
    for scene in crowd.frames[warmup:]:
        started = time.perf_counter()
        embed_boxes(embedder, image, scene.detections)
        times["encode_ms"].append((time.perf_counter() - started) * 1000)
    return times


def motion_times(cfg: DictConfig, crowd: Crowd, warmup: int) -> dict[str, list[float]]:
    """The motion-only tracker's association: the detections' boxes and positions, no other cue."""
    tracker = build(cfg.tracker, thresholds=build(cfg.detector.public.thresholds))
    return association_times(tracker, crowd, warmup, lambda scene: (Cues(scene.point, scale=SCALE), None))


def colour_times(cfg: DictConfig, encoder: AppearanceEncoder, crowd: Crowd, warmup: int) -> dict[str, list[float]]:
    """The colour configuration's association (texture memories); its encoding column is the colour descriptor of
    the detections' textures."""
    memory = build_memory(cfg.appearance, encoder)
    tracker = build(cfg.tracker, thresholds=build(cfg.detector.public.thresholds), appearance=memory)

    def cues(scene: CrowdFrame) -> tuple[Cues, float]:
        texture = crowd.textures[torch.as_tensor(scene.people)]
        started = time.perf_counter()
        appearance = encoder.encode(texture)
        encode_ms = (time.perf_counter() - started) * 1000
        return Cues(scene.point, scene.log_depth, scene.pose, appearance, texture, scale=SCALE), encode_ms

    return association_times(tracker, crowd, warmup, cues)


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
                box, float(score), point, float(np.exp(depth)), pose, uv[person], frame, int(person), IMAGE_SIZE
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
    parser.add_argument("--warmup", type=int, default=40, help="phalanx frames run before timing")
    parser.add_argument("--phalp-budget", type=float, default=120.0, help="seconds of PHALP frames per crowd size")
    parser.add_argument("--phalp-path", default=None, help="folder holding phalp 0.1.3 (added to sys.path)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's choice)")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "bench_association.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    configs = configurations()
    colour = configs["colour"]
    encoder = build(colour.appearance.encoder)(body_model=build(colour.body))
    uv_size = colour.appearance.encoder.uv_size
    embedding_size = crop_embedder(learned_appearance(configs["default"])).embedding_size
    phalp_skipped = None
    if uv_size != UV_SIZE:
        phalp_skipped = f"PHALP needs {UV_SIZE}² UV maps, the configuration has {uv_size}²."
    rows = []
    for people in args.people:
        crowd = walking_crowd(people, args.warmup + args.frames, uv_size, embedding_size)
        row: dict = {"people": people}
        for name, times in (
            ("default", default_times(configs["default"], crowd, args.warmup)),
            ("motion", motion_times(configs["motion"], crowd, args.warmup)),
            ("colour", colour_times(colour, encoder, crowd, args.warmup)),
        ):
            row.update(
                {
                    f"{name}_median_ms": median(times["wall_ms"]),
                    f"{name}_cpu_median_ms": median(times["cpu_ms"]),
                    f"{name}_detection_encode_median_ms": median(times["encode_ms"]),
                    f"{name}_tracks_mean": float(np.mean(times["tracks"])),
                    f"{name}_refound": times["refound"][0],
                    f"{name}_switches": times["switches"][0],
                }
            )
        row["frames"] = args.frames
        if phalp_skipped is None:
            try:
                theirs = phalp_times(colour, args.phalp_path, crowd, args.frames, args.phalp_budget)
            except PhalpUnavailable as error:
                phalp_skipped = str(error)
            else:
                row.update(
                    {
                        "phalp_frames": len(theirs["wall_ms"]),
                        "phalp_pairs_mean": float(np.mean(theirs["pairs"])),
                        "phalp_median_ms": median(theirs["wall_ms"]),
                        "phalp_cpu_median_ms": median(theirs["cpu_ms"]),
                        "speed_up": median(theirs["wall_ms"]) / row["colour_median_ms"],
                        "cpu_speed_up": median(theirs["cpu_ms"]) / row["colour_cpu_median_ms"],
                    }
                )
        rows.append(row)
        print(f"{people} people done", flush=True)

    setup = (
        f"Association per frame (`Tracker.associate`, median ms), synthetic walking crowd ({IMAGE_SIZE[0]}×"
        f"{IMAGE_SIZE[1]}, half the people hidden 10–40 frames once, {embedding_size}-value embeddings, {uv_size}² UV "
        f"textures): phalanx default (tracker=phalp, appearance=mobilenet: gate and re-identification), motion-only "
        f"(tracker=default appearance=none), colour (appearance=colour) vs PHALP 0.1.3 deep_sort (predict TPL, "
        f"EQ_010, random-weight networks, CPU; speed-up against colour). Target: default ≤ 5 ms at 20 people on 2 CPU "
        f"cores. {args.warmup} + {args.frames} phalanx frames, PHALP up to {args.frames} frames or "
        f"{args.phalp_budget:g} s per size; re-found: tracks matched after ≥ {REFOUND_AFTER} frames lost, switches: "
        f"tracks matched to another person, over the timed frames; {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}"
    )
    if phalp_skipped is not None:
        setup += f"\n\nPHALP skipped: {phalp_skipped}"
    write_report(args.output, setup, table(rows), rows)


def table(rows: list[dict]) -> str:
    """The markdown table of the results; PHALP cells read '-' when it was skipped."""

    def cell(row: dict, key: str, fmt: str, unit: str = "") -> str:
        return "-" if row.get(key) is None else format(row[key], fmt) + unit

    columns = [
        ("default ms", "default_median_ms", ".2f", ""),
        ("default CPU ms", "default_cpu_median_ms", ".2f", ""),
        ("motion-only ms", "motion_median_ms", ".2f", ""),
        ("motion-only CPU ms", "motion_cpu_median_ms", ".2f", ""),
        ("colour ms", "colour_median_ms", ".2f", ""),
        ("colour CPU ms", "colour_cpu_median_ms", ".2f", ""),
        ("PHALP ms", "phalp_median_ms", ",.0f", ""),
        ("PHALP CPU ms", "phalp_cpu_median_ms", ",.0f", ""),
        ("speed-up (colour)", "speed_up", ",.0f", "×"),
        ("default det. encode ms", "default_detection_encode_median_ms", ".2f", ""),
        ("colour det. encode ms", "colour_detection_encode_median_ms", ".2f", ""),
        ("default tracks", "default_tracks_mean", ".1f", ""),
        ("re-found default / motion / colour", None, "", ""),
        ("switches default / motion / colour", None, "", ""),
        ("PHALP frames", "phalp_frames", "d", ""),
    ]
    out = "| people | " + " | ".join(name for name, *_ in columns) + " |\n"
    out += "| ---: |" + " ---: |" * len(columns) + "\n"
    for row in rows:
        cells = []
        for name, key, fmt, unit in columns:
            if key is None:
                count = "refound" if name.startswith("re-found") else "switches"
                cells.append(" / ".join(str(row[f"{c}_{count}"]) for c in ("default", "motion", "colour")))
            else:
                cells.append(cell(row, key, fmt, unit))
        out += f"| {row['people']} | " + " | ".join(cells) + " |\n"
    return out


if __name__ == "__main__":
    main()
