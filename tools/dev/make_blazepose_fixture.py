"""Builds tests/fixtures/blazepose/reference.npz: a few real BlazePose crops and the original model's outputs
(landmarks, world landmarks, pose flag and the person segmentation logits).

The reference outputs come from the `.tflite` file run by Google's `ai-edge-litert` interpreter, which is not a
project dependency: run this in a throwaway environment, e.g.
    python3 -m venv --system-site-packages /tmp/litert && /tmp/litert/bin/pip install ai-edge-litert
    /tmp/litert/bin/python tools/dev/make_blazepose_fixture.py
Crops: people of PETS09-S2L1 (ground-truth boxes, one at the frame edge) and one crop of background without a
person, cut with the project's own ROI code and stored as uint8 so both runtimes see identical input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.regressors.blazepose.network import INPUT_SIZE  # noqa: E402
from models.regressors.blazepose.roi import crop_rois, square_rois  # noqa: E402
from models.regressors.blazepose.weights import find_landmark_model  # noqa: E402
from tracker.io import open_source  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "PETS09-S2L1"
OUTPUT = ROOT / "tests" / "fixtures" / "blazepose" / "reference.npz"
# (frame, ground-truth person id) pairs, chosen to span sizes and include a person cut by the frame edge; a last
# box (frame, x0, y0, x1, y1) on empty ground gives a crop without a person.
PEOPLE = ((1, 15), (60, 13), (41, 13))
BACKGROUND = (1, 600.0, 20.0, 660.0, 110.0)
ROI_SCALE = 1.25


def person_boxes(gt: np.ndarray) -> list[tuple[int, list[float]]]:
    boxes = []
    for frame, person in PEOPLE:
        row = gt[(gt[:, 0] == frame) & (gt[:, 1] == person)][0]
        boxes.append((frame, [row[2], row[3], row[2] + row[4], row[3] + row[5]]))
    return boxes + [(BACKGROUND[0], list(BACKGROUND[1:]))]


def run_litert(model_path: Path, crops: np.ndarray) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path))
    interpreter.allocate_tensors()
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    input_index = interpreter.get_input_details()[0]["index"]
    results: dict[str, list[np.ndarray]] = {"landmarks": [], "world": [], "pose_flag": [], "mask_logits": []}
    for crop in crops:
        interpreter.set_tensor(input_index, (crop.astype(np.float32) / 255.0)[None])
        interpreter.invoke()
        results["landmarks"].append(interpreter.get_tensor(outputs["Identity"]).reshape(-1, 5))
        results["world"].append(interpreter.get_tensor(outputs["Identity_4"]).reshape(-1, 3))
        results["pose_flag"].append(interpreter.get_tensor(outputs["Identity_1"]).reshape(()))
        results["mask_logits"].append(interpreter.get_tensor(outputs["Identity_2"]).reshape(INPUT_SIZE, INPUT_SIZE))
    stacked = {name: np.stack(values).astype(np.float32) for name, values in results.items()}
    stacked["mask_logits"] = stacked["mask_logits"].astype(np.float16)  # ±20 logits: 0.01 steps are plenty
    return stacked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    gt = np.loadtxt(DATA / "gt" / "gt.txt", delimiter=",")
    picked = person_boxes(gt)
    frame_numbers = sorted({frame for frame, _ in picked})
    images = {}
    for frame in frame_numbers:
        images[frame] = next(iter(open_source(DATA, start=frame, end=frame))).image
    frames = [images[frame] for frame in frame_numbers]
    frame_ids = torch.tensor([frame_numbers.index(frame) for frame, _ in picked])
    boxes = torch.tensor([box for _, box in picked], dtype=torch.float32)
    center, side = square_rois(boxes, ROI_SCALE)
    crops = crop_rois(frames, frame_ids, center, side, INPUT_SIZE)
    crops_uint8 = (crops * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    reference = run_litert(find_landmark_model(), crops_uint8)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        crops=crops_uint8,
        boxes=boxes.numpy(),
        frames=np.array([frame for frame, _ in picked]),
        is_person=np.array([True] * len(PEOPLE) + [False]),
        **reference,
    )
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e3:.0f} kB): pose flags {reference['pose_flag']}")


if __name__ == "__main__":
    main()
