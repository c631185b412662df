"""Fit quality of the blazepose regressor on PETS09-S2L1 frames 1–400 and a picture of ten fitted bodies.

People: public detections (det/det.txt) matched to ground truth (IoU >= 0.5, Hungarian), cut with the pipeline's
crops and run in windows as the tracker would. Reported: median 2D distance between the fitted body's SMPL joints
(posed by the body model, projected with the full-frame camera) and the visible BlazePose landmarks mapped to them,
in pixels and as a fraction of box height, over reliable people; the share of reliable and warm-started people.
Writes summary.json and bodies.png (ten reliable people from five windows: the frame around the box, visible
landmarks in red, fitted mesh in translucent green, SMPL skeleton in yellow) to --output.

    python -m benchmarks.eval_fit --output outputs/eval_fit
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from models.body import load_body_model
from models.camera import project
from models.crops import make_crops
from models.regressors.blazepose import BlazePoseRegressor
from models.regressors.blazepose.fit import JOINT_LANDMARKS
from models.structures import iou_matrix
from tracker.io import open_source

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "PETS09-S2L1"
MAPPED_JOINTS = [joint for joint, _, _ in JOINT_LANDMARKS]
PANEL = 240
EXAMPLE_EVERY = 80  # two people (first and ninth frame) from each window starting at frame 1, 81, 161, 241, 321
SKELETON_COLOR = (0, 255, 255)
LANDMARK_COLOR = (255, 64, 64)
MESH_COLOR = np.array([80, 200, 80], dtype=np.float32)


def read_mot(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def matched_detections(det: np.ndarray, gt: np.ndarray, frame: int, min_iou: float = 0.5) -> np.ndarray:
    """xyxy boxes of the frame's public detections that match a ground-truth person."""
    rows = det[det[:, 0] == frame]
    truth = gt[(gt[:, 0] == frame) & (gt[:, 6] != 0)]
    if len(rows) == 0 or len(truth) == 0:
        return np.zeros((0, 4), np.float32)
    boxes = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1).astype(np.float32)
    truth_boxes = np.concatenate([truth[:, 2:4], truth[:, 2:4] + truth[:, 4:6]], axis=1).astype(np.float32)
    iou = iou_matrix(boxes, truth_boxes)
    picked, chosen = linear_sum_assignment(-iou)
    return boxes[[p for p, c in zip(picked, chosen) if iou[p, c] >= min_iou]]


def panel(frame: np.ndarray, box: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray, vertices: np.ndarray,
          joints: np.ndarray, faces: np.ndarray) -> np.ndarray:  # fmt: skip
    """A PANEL×PANEL picture of one person: the frame around the box, the mesh (translucent), the SMPL skeleton
    (yellow) and the visible landmarks (red dots)."""
    center = (box[:2] + box[2:]) / 2
    side = 1.3 * max(box[2] - box[0], box[3] - box[1])
    scale = PANEL / side
    matrix = np.array([[scale, 0, PANEL / 2 - scale * center[0]], [0, scale, PANEL / 2 - scale * center[1]]])
    image = cv2.warpAffine(frame, matrix, (PANEL, PANEL), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def to_panel(points: np.ndarray) -> np.ndarray:
        return points @ matrix[:, :2].T + matrix[:, 2]

    mask = np.zeros((PANEL, PANEL), np.uint8)
    cv2.fillPoly(mask, np.round(to_panel(vertices)[faces] * 4).astype(np.int32), 1, shift=2)
    image[mask > 0] = (0.5 * image[mask > 0] + 0.5 * MESH_COLOR).astype(np.uint8)
    parents = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
    points = to_panel(joints)
    for joint, parent in enumerate(parents):
        if parent >= 0:
            cv2.line(image, tuple(np.round(points[joint]).astype(int)), tuple(np.round(points[parent]).astype(int)),
                     SKELETON_COLOR, 1, cv2.LINE_AA)  # fmt: skip
    for point, seen in zip(to_panel(landmarks), visibility):
        if seen > 0.5:
            cv2.circle(image, tuple(np.round(point).astype(int)), 2, LANDMARK_COLOR, -1, cv2.LINE_AA)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "eval_fit")
    parser.add_argument("--end", type=int, default=400)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--fit-steps", type=int, default=15, help="Adam steps of the fit (configs: 15)")
    args = parser.parse_args()
    det, gt = read_mot(DATA / "det" / "det.txt"), read_mot(DATA / "gt" / "gt.txt")
    body_model = load_body_model()
    regressor = BlazePoseRegressor(body_model, fit={"steps": args.fit_steps})
    faces = body_model.faces.numpy()
    errors_px, errors_fraction, reliable_count, warm_count, total = [], [], 0, 0, 0
    examples = []
    for window in open_source(DATA, start=1, end=args.end).windows(args.window):
        images = [frame.image for frame in window]
        boxes = [matched_detections(det, gt, frame.index) for frame in window]
        crops = make_crops(images, boxes)
        output = regressor.predict_with_landmarks(crops, images)
        params, landmarks = output.params, output.landmarks
        with torch.no_grad():
            posed = body_model(params.global_orient, params.body_pose, params.betas)
            joints = project(posed.joints, params.cam_t, params.focal_length, params.image_size)
        targets = torch.stack([landmarks.image[:, list(ids)].mean(1) for _, ids, _ in JOINT_LANDMARKS], 1)
        visible = torch.stack([landmarks.visibility[:, list(ids)].min(1).values for _, ids, _ in JOINT_LANDMARKS], 1)
        visible = visible > 0.5
        distances = (joints[:, MAPPED_JOINTS] - targets).norm(dim=-1)
        heights = crops.boxes[:, 3] - crops.boxes[:, 1]
        total += len(crops)
        warm_count += int(output.warm.sum())
        shown = 0
        for person in torch.nonzero(output.reliable).flatten().tolist():
            reliable_count += 1
            seen = distances[person][visible[person]]
            errors_px.extend(seen.tolist())
            errors_fraction.extend((seen / heights[person]).tolist())
            if window[0].index % EXAMPLE_EVERY == 1 and shown < 2 and crops.frame_ids[person] == 8 * shown:
                shown += 1
                vertices = project(
                    posed.vertices[person : person + 1],
                    params.cam_t[person : person + 1],
                    params.focal_length[person : person + 1],
                    params.image_size[person : person + 1],
                )
                frame = images[int(crops.frame_ids[person])]
                examples.append(panel(frame, crops.boxes[person].numpy(), landmarks.image[person].numpy(),
                                      landmarks.visibility[person].numpy(), vertices[0].numpy(),
                                      joints[person].numpy(), faces))  # fmt: skip
    args.output.mkdir(parents=True, exist_ok=True)
    summary = {
        "frames": f"1-{args.end}",
        "people": total,
        "reliable": reliable_count,
        "warm_started": warm_count,
        "median_error_px": float(np.median(errors_px)),
        "median_error_fraction_of_box_height": float(np.median(errors_fraction)),
        "p90_error_px": float(np.percentile(errors_px, 90)),
    }
    (args.output / "summary.json").write_text(json.dumps(summary, indent=2))
    grid = np.concatenate([np.concatenate(examples[:5], 1), np.concatenate(examples[5:10], 1)], 0)
    cv2.imwrite(str(args.output / "bodies.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
