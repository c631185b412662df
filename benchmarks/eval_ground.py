"""Where phalanx says people stand, against PETS09-S2L1's world ground-plane coordinates (gt.txt columns 8-9, metres).

The run's confirmed, matched tracks are matched to the ground-truth people of each frame (IoU >= 0.5, Hungarian, rows
with conf 0 ignored); each pair gives phalanx's ground position (the ground point of the box's bottom centre,
tracker.ground) and the ground-truth one. Both point sets are aligned by the similarity (rotation, uniform scale,
translation; a reflection if it fits better, as the ground truth's handedness is its own) and by the rigid motion
(no scale: what phalanx's metric scale is worth), and the remaining distances reported in metres. Compared:
- the default ground plane (BlazePose heels and face for runs with landmarks), and one fitted to the bodies' 2D joints;
- one fitted to box bottoms and tops alone, which carry no vertical vanishing point (why 2D poses are needed);
- a plane fitted (least squares) through the run's 3D ankles in its own camera, whose depth is stretched by the focal
  length convention: the plain approach.
Also printed: the camera implied by the ground truth itself (a homography of the world points onto the ground-truth
box bottoms, decomposed with the principal point at the image centre), for reference only.

    python -m benchmarks.eval_ground outputs/track/<run> [--gt ../shared/data/PETS09-S2L1/gt/gt.txt]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from benchmarks.report import write_report
from models.structures import iou_matrix, xywh_to_xyxy
from tracker.ground import (
    JOINT_CUE,
    LANDMARK_CUE,
    UprightCue,
    box_feet_and_heads,
    calibrate,
    estimate_ground,
    matched_rows,
)
from tracker.io import load_results

ROOT = Path(__file__).resolve().parents[1]
GT = ROOT.parent / "shared" / "data" / "PETS09-S2L1" / "gt" / "gt.txt"
BOX_CUE = UprightCue("boxes", feet=(), head=(), foot_height=0.0, head_height=1.7)
ANKLES = (7, 8)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a PETS09-S2L1 run folder with bodies, or its results.phx")
    parser.add_argument("--gt", type=Path, default=GT, help="gt.txt with world coordinates in columns 8-9")
    parser.add_argument("--output", type=Path, default=Path("outputs/eval_ground/report.md"))
    return parser.parse_args()


def pairs(records: list[dict], gt: np.ndarray) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """Per frame: the record, the rows of its confirmed matched tracks paired with ground-truth people, and those
    people's world coordinates."""
    out = []
    for record in records:
        rows = np.flatnonzero(matched_rows(record) & (np.asarray(record["states"]) == "confirmed"))
        truth = gt[gt[:, 0] == record["frame"]]
        if len(rows) == 0 or len(truth) == 0:
            continue
        iou = iou_matrix(np.asarray(record["boxes"], dtype=np.float64)[rows], xywh_to_xyxy(truth[:, 2:6]))
        mine, theirs = linear_sum_assignment(-iou)
        keep = iou[mine, theirs] >= 0.5
        out.append((record, rows[mine[keep]], truth[theirs[keep], 7:9]))
    return out


def aligned_errors(points: np.ndarray, truth: np.ndarray, scale: bool) -> tuple[np.ndarray, float]:
    """Distances after the best similarity (`scale`) or rigid alignment of `points` onto `truth` (either handedness),
    and the scale used."""
    best = None
    for handedness in (1.0, -1.0):
        source = points * np.array([1.0, handedness])
        source_mean, truth_mean = source.mean(axis=0), truth.mean(axis=0)
        centred, target = source - source_mean, truth - truth_mean
        u, singular, vt = np.linalg.svd(target.T @ centred)
        correction = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
        rotation = u @ correction @ vt
        factor = float((singular * np.diag(correction)).sum() / (centred**2).sum()) if scale else 1.0
        errors = np.linalg.norm(factor * centred @ rotation.T + truth_mean - truth, axis=1)
        if best is None or errors.mean() < best[0].mean():
            best = (errors, factor)
    return best


def plane_through_ankles(matched: list[tuple[dict, np.ndarray, np.ndarray]]) -> np.ndarray:
    """2D coordinates of the run's 3D ankles (its own camera) in the least-squares plane through all of them."""
    ankles = np.concatenate([record["joints_3d"][rows][:, list(ANKLES)].mean(axis=1) for record, rows, _ in matched])
    centred = ankles - ankles.mean(axis=0)
    basis = np.linalg.svd(centred, full_matrices=False)[2][:2]
    return centred @ basis.T


def reference_camera(gt: np.ndarray, image_size: tuple[int, int]) -> dict[str, float]:
    """Focal length, pitch and camera height implied by the ground truth's world points and box bottoms."""
    feet = np.stack([gt[:, 2] + gt[:, 4] / 2, gt[:, 3] + gt[:, 5]], axis=1)
    homography = cv2.findHomography(gt[:, 7:9], feet, cv2.RANSAC, 3.0)[0]
    centred = np.array([[1.0, 0.0, -image_size[0] / 2], [0.0, 1.0, -image_size[1] / 2], [0.0, 0.0, 1.0]]) @ homography
    first, second = centred[:, 0], centred[:, 1]
    focal = math.sqrt(-(first[0] * second[0] + first[1] * second[1]) / (first[2] * second[2]))
    inverse = np.diag([1 / focal, 1 / focal, 1.0])
    axis_x, axis_y = inverse @ first, inverse @ second
    norm = np.linalg.norm(axis_x)
    rotation = np.stack([axis_x / norm, axis_y / np.linalg.norm(axis_y)], axis=1)
    rotation = np.concatenate([rotation, np.cross(rotation[:, 0], rotation[:, 1])[:, None]], axis=1)
    centre = -rotation.T @ (inverse @ centred[:, 2] / norm)
    return {"focal_px": focal, "pitch_deg": math.degrees(math.asin(abs(rotation[2, 2]))), "height": abs(centre[2])}


def main() -> None:
    args = parse_args()
    results = load_results(args.run)
    gt = np.loadtxt(args.gt, delimiter=",", ndmin=2)
    gt = gt[gt[:, 6] != 0]
    records = list(results.frames())
    matched = pairs(records, gt)
    truth = np.concatenate([world for _, _, world in matched])
    size = (int(results.header["width"]), int(results.header["height"]))
    planes = {}
    keys = set(results.header["per_box_keys"])
    for cue in (LANDMARK_CUE, JOINT_CUE):
        if cue.key in keys:
            planes[f"ground plane from {cue.key}"] = estimate_ground(results, cue=cue)
    boxes = np.concatenate([np.asarray(r["boxes"], np.float64)[matched_rows(r) & r["has_pose"]] for r in records])
    inside = (boxes[:, :2] > 3).all(axis=1) & (boxes[:, 2] < size[0] - 3) & (boxes[:, 3] < size[1] - 3)
    planes["ground plane from box bottoms and tops"] = calibrate(*box_feet_and_heads(boxes[inside]), BOX_CUE, size)
    variants = {}
    for name, plane in planes.items():
        feet = [box_feet_and_heads(np.asarray(record["boxes"], np.float64)[rows])[0] for record, rows, _ in matched]
        variants[name] = (plane.ground_points(np.concatenate(feet)), plane)
    variants["plane through the run's 3D ankles (its camera)"] = (plane_through_ankles(matched), None)
    rows, lines = [], []
    for name, (points, plane) in variants.items():
        finite = np.isfinite(points).all(axis=1)
        similarity, scale = aligned_errors(points[finite], truth[finite], scale=True)
        rigid, _ = aligned_errors(points[finite], truth[finite], scale=False)
        camera = ""
        if plane is not None:
            camera = (
                f"{plane.focal:.0f} ± {100 * plane.focal_uncertainty:.0f}% / {math.degrees(plane.pitch):.1f} / "
                f"{plane.camera_height:.2f}"
            )
        figures = {
            "variant": name,
            "pairs": int(finite.sum()),
            "similarity_mean_m": float(similarity.mean()),
            "similarity_median_m": float(np.median(similarity)),
            "similarity_p90_m": float(np.percentile(similarity, 90)),
            "scale": scale,
            "rigid_mean_m": float(rigid.mean()),
            "camera": None if plane is None else plane.to_dict(),
        }
        rows.append(figures)
        lines.append(
            f"| {name} | {camera} | {figures['pairs']} | {figures['similarity_mean_m']:.2f} | "
            f"{figures['similarity_median_m']:.2f} | {figures['similarity_p90_m']:.2f} | {scale:.3f} | "
            f"{figures['rigid_mean_m']:.2f} |"
        )
    header = (
        "| positions | focal px / pitch deg / camera height m | pairs | similarity: mean m | median m | 90% m | "
        "scale | rigid: mean m |\n|---|---|---:|---:|---:|---:|---:|---:|"
    )
    reference = reference_camera(gt, size)
    first, last = records[0]["frame"], records[-1]["frame"]
    setup = (
        f"Ground positions of {results.path} against {args.gt} (frames {first}-{last}); the camera the ground truth "
        f"implies: focal {reference['focal_px']:.0f} px, pitch {reference['pitch_deg']:.1f} deg, height "
        f"{reference['height']:.2f} (ground-truth units)"
    )
    write_report(args.output, setup, header + "\n" + "\n".join(lines), rows)


if __name__ == "__main__":
    main()
