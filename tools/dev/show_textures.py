"""Draw sampled UV textures of a few PETS09-S2L1 people next to their crops, to check where the colours land.

For each person (frame number and ground-truth id from gt/gt.txt): the regressor crop, the crop with the posed
mesh's silhouette tinted over it, the sampled UV texture (invisible texels in grey) and the texture coloured by
the appearance descriptor's body parts. The body comes from the template regressor (models/hmr2/template.py):
the rest pose, upright and facing the camera, sized to the box; it estimates no pose.

    python tools/dev/show_textures.py                                   # three default people of frame 100
    python tools/dev/show_textures.py --people 100:11 100:9 100:19 --output outputs/textures.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from models.appearance import ColourDescriptor
from models.body import load_body_model
from models.crops import make_crops
from models.regressors.template import TemplateRegressor
from models.structures import DEFAULT_CROP_SPEC, InputError
from models.texture.sampler import TextureSampler, crop_camera, crops_to_rgb
from models.texture.torch_rasterizer import TorchRasterizer
from tracker.io import open_source

ROOT = Path(__file__).resolve().parents[2]
SEQUENCE = ROOT.parent / "shared" / "data" / "PETS09-S2L1"
APPEARANCE_CONFIG = ROOT / "configs" / "appearance" / "colour.yaml"
INVISIBLE_GREY = 0.5
SILHOUETTE_TINT = np.array([0.0, 1.0, 0.0])
PART_COLOURS = np.array(  # one RGB colour per part, in the config's order
    [[1.0, 0.9, 0.2], [0.9, 0.2, 0.2], [0.2, 0.5, 1.0], [0.2, 0.9, 0.9], [0.9, 0.4, 0.9], [0.3, 0.8, 0.3],
     [1.0, 0.6, 0.1], [0.6, 0.6, 0.6]]
)


def ground_truth_boxes(gt_file: Path, frame: int, ids: list[int]) -> np.ndarray:
    """xyxy boxes of the given ids in one frame of a MOT gt.txt (frame,id,x,y,w,h,...)."""
    rows = np.loadtxt(gt_file, delimiter=",", ndmin=2)
    boxes = []
    for person in ids:
        match = rows[(rows[:, 0] == frame) & (rows[:, 1] == person)]
        if len(match) == 0:
            raise InputError(f"{gt_file} has no person {person} in frame {frame}.")
        x, y, w, h = match[0, 2:6]
        boxes.append([x, y, x + w, y + h])
    return np.asarray(boxes, dtype=np.float32)


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """A float RGB image in [0, 1] as uint8 with a caption bar on top."""
    canvas = np.full((image.shape[0] + 22, image.shape[1], 3), 255, dtype=np.uint8)
    canvas[22:] = (image.clip(0, 1) * 255).astype(np.uint8)
    cv2.putText(canvas, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequence", type=Path, default=SEQUENCE)
    parser.add_argument("--people", nargs="+", default=["100:11", "100:9", "100:19"], help="FRAME:GT_ID, 1-based")
    parser.add_argument("--uv-size", type=int, default=256)
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "show_textures.png")
    args = parser.parse_args()

    wanted = [tuple(int(v) for v in item.split(":")) for item in args.people]
    images, boxes = [], []
    for frame, person in wanted:
        source = open_source(args.sequence / "vtest.avi", start=frame, end=frame)
        images.append(next(iter(source)).image)
        boxes.append(ground_truth_boxes(args.sequence / "gt" / "gt.txt", frame, [person]))
    people = make_crops(images, boxes, spec=DEFAULT_CROP_SPEC)

    body_model = load_body_model()
    params = TemplateRegressor.from_body_model(body_model).predict(people)
    with torch.no_grad():
        vertices = body_model(params.global_orient, params.body_pose, params.betas, transl=params.cam_t).vertices
    rasterizer = TorchRasterizer()
    sampler = TextureSampler(body_model, rasterizer, uv_size=args.uv_size)
    textures = sampler.sample_crops(people, params, vertices, DEFAULT_CROP_SPEC)

    settings = yaml.safe_load(APPEARANCE_CONFIG.read_text())["encoder"]
    descriptor = ColourDescriptor.from_body_model(body_model, args.uv_size, settings["parts"])
    part_labels = np.full(args.uv_size * args.uv_size, -1)
    part_labels[descriptor.texel_index.numpy()] = descriptor.texel_part.numpy()
    part_labels = part_labels.reshape(args.uv_size, args.uv_size)
    part_image = np.where(part_labels[..., None] >= 0, PART_COLOURS[part_labels.clip(0)], 1.0)

    crops = crops_to_rgb(people.crops, DEFAULT_CROP_SPEC).permute(0, 2, 3, 1).numpy()
    focal, principal_point = crop_camera(
        params.focal_length, params.image_size, people.center, people.size, people.crops.shape[-1]
    )
    covered = rasterizer.rasterize(
        vertices, body_model.faces, focal, principal_point, crops.shape[1:3]
    ).covered.numpy()
    rows = []
    for i, (frame, person) in enumerate(wanted):
        texture = textures[i].permute(1, 2, 0).numpy()
        visible = texture[..., 3:] > 0.5
        shown = np.where(visible, texture[..., :3], INVISIBLE_GREY)
        overlay = np.where(covered[i][..., None], 0.6 * crops[i] + 0.4 * SILHOUETTE_TINT, crops[i])
        tiles = [
            labelled(crops[i], f"frame {frame} id {person}"),
            labelled(overlay, "template mesh"),
            labelled(shown, f"UV texture, {visible.mean():.0%} visible"),
            labelled(np.where(visible, 0.5 * texture[..., :3] + 0.5 * part_image, part_image), "UV parts"),
        ]
        rows.append(np.concatenate(tiles, axis=1))
    legend = np.full((22, rows[0].shape[1], 3), 255, dtype=np.uint8)
    x = 4
    for name, colour in zip(settings["parts"], PART_COLOURS):
        cv2.rectangle(legend, (x, 5), (x + 12, 17), tuple(int(c * 255) for c in colour), -1)
        cv2.putText(legend, name, (x + 16, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        x += 20 + 8 * len(name)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), np.concatenate(rows + [legend], axis=0)[..., ::-1])
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
