"""Writes tests/fixtures/phalp/layout.json: the layout of PHALP's results pickle, which tests/test_export.py checks
phalanx's `--format phalp` export against key for key and shape for shape.

The key lists are read from PHALP's own source, `phalp/trackers/PHALP.py` (brjathu/PHALP), by parsing `track()`:
the frame scalars of `final_visuals_dic.setdefault(frame_name, {...})`, `eval_keys`, the history keys (`history_keys`
with rendering on, as PHALP runs by default, `extra_keys_1`, `extra_keys_2`) and the keys deleted after rendering
(`tmp_keys_`). What one element of each list holds was read from the code that fills it (line numbers at commit
96f7e6c of brjathu/PHALP, cited per key below) and is written beside the keys.

    git clone https://github.com/brjathu/PHALP /tmp/phalp && python tools/dev/make_phalp_fixture.py --phalp /tmp/phalp
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "tests" / "fixtures" / "phalp" / "layout.json"
TRACKER = Path("phalp") / "trackers" / "PHALP.py"

# One element of each per-track / per-detection list: [type, shape or null, dtype or null, where PHALP fills it].
ELEMENTS = {
    "tid": ["int", None, None, "deep_sort_/tracker.py: track ids from _next_id = 1"],
    "tracked_ids": ["int", None, None, "PHALP.py L229: ids of tracks with time_since_update == 0"],
    "tracked_time": ["int", None, None, "PHALP.py L223: track.time_since_update"],
    "bbox": ["ndarray", [4], "float32", "PHALP.py L442: x0, y0, w, h from the float32 detector box"],
    "tracked_bbox": ["ndarray", [4], "float32", "PHALP.py L230: the bbox of a matched track"],
    "appe": ["ndarray", [4096], "float32", "PHALP.py L446: texture autoencoder embedding"],
    "loca": ["ndarray", [99], "float32", "PHALP.py L434: 2d_joints (90) + camera x3"],
    "pose": ["ndarray", [229], "float32", "utils.py smpl_to_pose_camera_vector: orient, pose, betas, camera"],
    "center": ["ndarray", [2], "float32", "PHALP.py L452: centre of the padded box"],
    "scale": ["float", None, None, "detection.py L42: max(w, h) of the padded box / max(image height, width)"],
    "size": ["list", [2], None, "PHALP.py L459: [image height, image width]"],
    "img_path": ["str", None, None, "PHALP.py L460: the frame key"],
    "img_name": ["str", None, None, "PHALP.py L461: basename of img_path"],
    "class_name": ["int64", [], "int64", "PHALP.py L462: detector class id, 0 = person"],
    "conf": ["float32", [], "float32", "PHALP.py L444: detector score"],
    "annotations": ["list", None, None, "PHALP.py L466: [] for detector boxes"],
    "smpl": ["dict", None, None, "PHALP.py L454: smpl head output, rotation matrices"],
    "camera": ["ndarray", [3], "float32", "PHALP.py L455 / hmar.py L119-120: pred_cam_t"],
    "camera_bbox": ["ndarray", [3], "float32", "PHALP.py L456: HMAR's crop camera (s, tx, ty)"],
    "3d_joints": ["ndarray", [45, 3], "float32", "hmar.py L122-123: 44 OpenPose + extra joints and a zero row"],
    "2d_joints": ["ndarray", [90], "float32", "PHALP.py L430: the 45 joints projected, /256, flattened"],
    "mask": ["list", [1], None, "PHALP.py L348-353: [COCO RLE {'size': [H, W], 'counts': str}]"],
    "extra_data": ["int", None, None, "PHALP.py L378-379: run_additional_models, default detection index"],
}
SMPL = {
    "global_orient": [[1, 3, 3], "float32"],
    "body_pose": [[23, 3, 3], "float32"],
    "betas": [[10], "float32"],
}  # phalp/models/heads/smpl_head.py: pred_body_pose[:, [0]], [:, 1:], betas


def key_lists(source: str) -> dict[str, list[str]]:
    """The list literals assigned in PHALP.track() (the rendering branch of each conditional), by variable name,
    and the keys of the frame dict created with setdefault."""
    track = next(
        node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef) and node.name == "track"
    )
    lists: dict[str, list[str]] = {}
    for node in ast.walk(track):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = node.value.body if isinstance(node.value, ast.IfExp) else node.value
            if isinstance(value, ast.List) and all(isinstance(item, ast.Constant) for item in value.elts):
                lists[node.targets[0].id] = [item.value for item in value.elts]
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "setdefault" and len(node.args) == 2:
            if isinstance(node.args[1], ast.Dict):
                lists["frame_scalars"] = [key.value for key in node.args[1].keys]
    return lists


def layout(lists: dict[str, list[str]]) -> dict:
    """The per-frame keys of a pickle PHALP wrote with rendering on, and what their elements hold."""
    deleted = set(lists["tmp_keys_"])
    stored = lists["history_keys"] + lists["extra_keys_1"] + lists["extra_keys_2"]
    history = [key for key in stored if key not in deleted]
    per_detection = ["tracked_ids", "tracked_bbox"]
    per_track = [key for key in lists["eval_keys"] if key not in per_detection] + history
    missing = [key for key in per_detection + per_track if key not in ELEMENTS]
    if missing:
        raise SystemExit(f"PHALP.py stores keys this tool does not describe: {missing}")
    return {
        "frame_keys": lists["frame_scalars"] + lists["eval_keys"] + history,
        "scalars": lists["frame_scalars"],
        "per_track": per_track,
        "per_detection": per_detection,
        "elements": {key: ELEMENTS[key] for key in per_detection + per_track},
        "smpl": SMPL,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phalp", type=Path, required=True, help="a checkout of github.com/brjathu/PHALP")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    source = (args.phalp / TRACKER).read_text()
    commit = subprocess.run(["git", "-C", str(args.phalp), "rev-parse", "HEAD"], capture_output=True, text=True)
    fixture = {"source": f"brjathu/PHALP@{commit.stdout.strip()} {TRACKER}", **layout(key_lists(source))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {args.out}: {len(fixture['frame_keys'])} frame keys")


if __name__ == "__main__":
    main()
