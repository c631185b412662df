"""A run as PHALP's results pickle, the file `phalp/trackers/PHALP.py` (brjathu/PHALP) writes and its visualiser,
`utils_tracks.get_tracks` / `create_fast_tracklets` and LART read: `joblib.dump(dict, path, compress=3)` of a dict
keyed by frame image path, one dict per processed frame, every list in it aligned with `tid`, except `tracked_ids`
and `tracked_bbox` (the tracks matched in that frame).

PHALP's conventions, kept: `tid` lists the confirmed tracks alive (tentative tracks never, except that a track's
tentative frames are listed once it is confirmed, as PHALP back-fills them); `tracked_time` counts the frames since a
track's last match (0: matched now); a track not matched now (a "ghost") repeats the values of its last match;
`bbox` is x0, y0, w, h in frame pixels; `smpl` holds rotation matrices; `camera` is the body translation for PHALP's
virtual camera (focal 5000/256 × the longer image side, principal point at the centre, as phalanx's own); joints are
in OpenPose order. README, "Exports", lists what phalanx cannot fill and what those keys hold instead.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import joblib
import numpy as np

from models.structures import InputError
from tracker.export.run import ExportRun
from tracker.ground import matched_rows
from tracker.io import open_source
from tracker.schema import CUT_KEY

PHALP_FOCAL = 5000.0  # PHALP's focal length for its 256-pixel virtual image
PHALP_RESOLUTION = 256
JOINT_ROWS = 45  # OpenPose BODY_25, 19 extra regressor joints, and the body origin
# OpenPose BODY_25 rows that SMPL joints give (PHALP's smpl_to_openpose map): neck, arms, mid-hip, legs.
OPENPOSE_FROM_SMPL = {1: 12, 2: 17, 3: 19, 4: 21, 5: 16, 6: 18, 7: 20, 8: 0, 9: 2, 10: 5, 11: 8, 12: 1, 13: 4, 14: 7}
ORIGIN_ROW = 44  # the body origin, where PHALP's tracker reads a person's location
EMPTY_APPEARANCE = np.zeros(0, dtype=np.float32)  # PHALP's texture-autoencoder embedding: phalanx has none
# Per-track keys besides tid, bbox and tracked_time, in PHALP's order (with rendering on, as PHALP runs by default).
HISTORY_KEYS = (
    "appe", "loca", "pose", "center", "scale", "size", "img_path", "img_name", "class_name", "conf", "annotations",
    "smpl", "camera", "camera_bbox", "3d_joints", "2d_joints", "mask", "extra_data",
)  # fmt: skip


def write_phalp(run: ExportRun, output: Path, frames_dir: Path | None = None, write_frames: bool = False) -> Path:
    """Write the run as PHALP's pickle to `output`; frame keys are `frames_dir/%06d.jpg` (frame numbers, as PHALP
    names the frames it extracts; default: `<output stem>_frames/` beside it), written as JPEGs when `write_frames`."""
    if not run.has_bodies:
        raise InputError(f"Results {run.results.path} hold no bodies: the PHALP format needs SMPL parameters.")
    frames_dir = frames_dir or output.with_name(output.stem + "_frames")
    confirmed = _confirmed_tracks(run)
    width, height = run.image_size
    side = max(width, height)
    padding = ((side - width) // 2, (side - height) // 2)  # left, top: PHALP pads the frame to a centred square
    last_match: dict[int, tuple[int, dict]] = {}  # track → (processed index, entry) of its last match
    frames: dict[str, dict] = {}
    numbers = []
    for index, record in enumerate(run.records()):
        numbers.append(record["frame"])
        key = str(frames_dir / f"{record['frame']:06d}.jpg")
        frame = frames[key] = {"time": index, "shot": int(record.get(CUT_KEY, False)), "frame_path": key}
        for name in ("tracked_ids", "tracked_bbox", "tid", "bbox", "tracked_time", *HISTORY_KEYS):
            frame[name] = []
        matched = matched_rows(record)
        has_body = np.isfinite(record["cam_t"]).all(axis=1)
        for row, track_id in enumerate(record["track_ids"].tolist()):
            if track_id not in confirmed:
                continue
            if has_body[row]:
                entry = _entry(record, row, key, (width, height), padding)
                if matched[row]:
                    last_match[track_id] = (index, entry)
            elif track_id in last_match:
                entry = last_match[track_id][1]
            else:
                continue
            since = index - last_match[track_id][0] if track_id in last_match else 0
            frame["tid"].append(track_id)
            frame["bbox"].append(entry["bbox"])
            frame["tracked_time"].append(since)
            for name in HISTORY_KEYS:
                frame[name].append(entry[name])
            if since == 0:
                frame["tracked_ids"].append(track_id)
                frame["tracked_bbox"].append(entry["bbox"])
    output.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(frames, output, compress=3)
    if write_frames and numbers:
        _write_frames(run, frames_dir, numbers)
    return output



def _confirmed_tracks(run: ExportRun) -> set[int]:
    """Ids of the tracks that are ever confirmed in the exported frames."""
    ids: set[int] = set()
    for record in run.results.frames():
        if run.frames is None or run.frames[0] <= record["frame"] <= run.frames[1]:
            ids.update(record["track_ids"][np.asarray(record["states"]) == "confirmed"].tolist())
    return ids


def _entry(
    record: dict, row: int, key: str, image_size: tuple[int, int], padding: tuple[int, int]
) -> dict[str, object]:
    """One track's PHALP values from row `row` of a record (PHALP's types: float32 arrays, Python scalars)."""
    width, height = image_size
    side = max(width, height)
    x1, y1, x2, y2 = (float(value) for value in record["boxes"][row])
    box_size = max(x2 - x1, y2 - y1)
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2], dtype=np.float32)
    cam_t = record["cam_t"][row].astype(np.float64)
    focal = PHALP_FOCAL / PHALP_RESOLUTION * side
    camera = cam_t * np.array([1.0, 1.0, focal / float(record["focal_length"][row])])  # same image, PHALP's focal
    body_joints = record["joints_3d"][row].astype(np.float64) - cam_t  # rotated by the root, not translated
    joints_3d = np.zeros((JOINT_ROWS, 3), dtype=np.float32)
    for openpose, smpl in OPENPOSE_FROM_SMPL.items():
        joints_3d[openpose] = body_joints[smpl]
    joints_2d = np.zeros((JOINT_ROWS, 2), dtype=np.float32)
    for openpose, smpl in OPENPOSE_FROM_SMPL.items():
        joints_2d[openpose] = _padded(record["joints_2d"][row, smpl], padding, side)
    origin = focal * camera[:2] / camera[2] + np.array([width / 2, height / 2])
    joints_2d[ORIGIN_ROW] = _padded(origin, padding, side)
    smpl = {
        "global_orient": record["smpl_global_orient"][row].astype(np.float32),
        "body_pose": record["smpl_body_pose"][row].astype(np.float32),
        "betas": record["smpl_betas"][row].astype(np.float32),
    }
    camera = camera.astype(np.float32)
    location = camera * np.array([1.0, 1.0, 1.0 / 200.0], dtype=np.float32)
    flat_2d = joints_2d.reshape(-1)
    return {
        "bbox": np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float32),
        "appe": EMPTY_APPEARANCE,
        "loca": np.concatenate([flat_2d, camera, camera, camera]).astype(np.float32),
        "pose": np.concatenate(
            [smpl["global_orient"].reshape(-1), smpl["body_pose"].reshape(-1), smpl["betas"], location]
        ).astype(np.float32),
        "center": centre,
        "scale": box_size / side,
        "size": [height, width],
        "img_path": key,
        "img_name": Path(key).name,
        "class_name": np.int64(0),
        "conf": np.float32(record["scores"][row]),
        "annotations": [],
        "smpl": smpl,
        "camera": camera,
        "camera_bbox": _crop_camera(camera, centre, box_size, padding, side),
        "3d_joints": joints_3d,
        "2d_joints": flat_2d,
        "mask": [box_rle((x1, y1, x2, y2), height, width)],
        "extra_data": None,
    }


def _padded(pixels: np.ndarray, padding: tuple[int, int], side: int) -> np.ndarray:
    """Frame pixels as PHALP's coordinates: [0, 1] across the frame padded to a centred square of `side`."""
    return ((np.asarray(pixels, dtype=np.float64) + np.asarray(padding)) / side).astype(np.float32)


def _crop_camera(
    camera: np.ndarray, centre: np.ndarray, box_size: float, padding: tuple[int, int], side: int
) -> np.ndarray:
    """PHALP's weak-perspective crop camera (s, tx, ty) that its `get_3d_parameters` turns into `camera` for a crop
    of this box (its centre and larger side) in the 256-pixel virtual image."""
    ratio = PHALP_RESOLUTION / side
    crop_size = box_size * ratio
    crop_centre = (centre.astype(np.float64) + np.asarray(padding)) * ratio
    depth = float(camera[2])
    scale = 2 * PHALP_FOCAL / (depth * crop_size) if crop_size > 0 else 0.0
    shift = camera[:2] - (crop_centre - PHALP_RESOLUTION / 2) * depth / PHALP_FOCAL
    return np.array([scale, shift[0], shift[1]], dtype=np.float32)


def box_rle(box: tuple[float, float, float, float], height: int, width: int) -> dict:
    """A box (xyxy pixels, rounded to whole pixels) as a COCO compressed RLE mask `{'size': [H, W], 'counts': str}`,
    the form PHALP stores and pycocotools.mask.decode reads: runs of the column-major mask, starting with zeros."""
    x1, y1, x2, y2 = (int(round(value)) for value in box)
    x1, x2 = min(max(x1, 0), width), min(max(x2, 0), width)
    y1, y2 = min(max(y1, 0), height), min(max(y2, 0), height)
    if x2 <= x1 or y2 <= y1:
        counts = [height * width]
    else:
        inside, columns = y2 - y1, x2 - x1
        counts = [x1 * height + y1]
        for column in range(columns):
            counts.append(inside)
            counts.append(height - inside if column < columns - 1 else height - y2 + (width - x2) * height)
    return {"size": [height, width], "counts": rle_string(_merged_runs(counts))}


def _merged_runs(counts: list[int]) -> list[int]:
    """Runs with the empty ones between columns merged away (and no empty last run), as COCO's encoder writes them."""
    merged = [counts[0]]
    index = 1
    while index < len(counts):
        if counts[index] == 0 and index + 1 < len(counts):
            merged[-1] += counts[index + 1]
            index += 2
        else:
            merged.append(counts[index])
            index += 1
    if len(merged) > 1 and merged[-1] == 0:
        merged.pop()
    return merged


def rle_string(counts: list[int]) -> str:
    """COCO's compressed RLE string of run lengths: each run (minus the run two before, from the third on) written
    in 5-bit groups, low first, with a continuation bit, each group offset by 48 into printable characters."""
    characters = []
    for index, count in enumerate(counts):
        value = count - counts[index - 2] if index > 2 else count
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            characters.append(chr(group + (0x20 if more else 0) + 48))
    return "".join(characters)


def _write_frames(run: ExportRun, frames_dir: Path, numbers: list[int]) -> None:
    """The exported frames (`numbers`) as JPEGs named as the pickle's keys."""
    stride = int(run.header["frame_numbers"][2])
    frames_dir.mkdir(parents=True, exist_ok=True)
    for frame in open_source(run.video_path(), start=numbers[0], end=numbers[-1], stride=stride):
        cv2.imwrite(str(frames_dir / f"{frame.index:06d}.jpg"), cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
