"""A run as a Rerun recording (`.rrd`, rerun-sdk, `pip install phalanx[rerun]`): the video frames with the tracks'
boxes and ids, and the posed body meshes and skeletons in 3D over time, in the overlay's colours.

Entities (timelines `frame`, the video's frame number, and `time`, seconds):
- `world`: the ground frame (x right, y forward, z up, metres; tracker.ground) when the run gives a ground plane,
  else the run's camera frame (x right, y down, z forward);
- `world/camera`: the camera's pose in that frame and its pinhole; `world/camera/image`: each frame as JPEG;
  `world/camera/image/tracks`: the tracks' boxes, labelled with their ids;
- `world/people/<id>/mesh` and `world/people/<id>/skeleton`: a track's posed body (triangles and colour static, logged
  once) and its SMPL bones, cleared in frames where the track has no body;
- `world/trajectories`: where each track stood on the ground over the whole run (static; ground frame only).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import torch

from models.body import SMPL_PARENTS
from models.structures import InputError
from tracker.export.run import ExportRun
from tracker.ground import box_feet_and_heads, matched_rows
from tracker.io import open_source
from tracker.render import track_colour
from tracker.schema import MESH_KEYS

APPLICATION = "phalanx"
SHOWN_STATE = "confirmed"  # the tracks drawn, as the overlay draws them by default
BONES = [(joint, parent) for joint, parent in enumerate(SMPL_PARENTS) if parent >= 0]


def write_rrd(run: ExportRun, output: Path, meshes: bool = True, jpeg_quality: int = 85) -> Path:
    """Write the recording to `output` (video frames from the run's input video)."""
    try:
        import rerun as rr  # optional (a large wheel), so imported only here
    except ImportError:
        raise InputError("The .rrd export needs rerun-sdk: pip install 'phalanx[rerun]' (Python >= 3.11).") from None
    if not 1 <= jpeg_quality <= 100:
        raise InputError(f"JPEG quality must be within [1, 100], got {jpeg_quality}.")
    ground = run.ground
    body_model = run.body_model if run.has_bodies else None
    output.parent.mkdir(parents=True, exist_ok=True)
    recording = rr.RecordingStream(APPLICATION, recording_id=f"{run.name}-{run.folder.name}")
    recording.save(str(output))
    _log_scene(rr, recording, run, ground)
    records = run.records()
    first_record = next(records, None)
    if first_record is None:
        raise InputError(f"Results {run.results.path} have no frames to export.")
    _, last, stride = run.header["frame_numbers"]
    frames = iter(open_source(run.video_path(), start=first_record["frame"], end=last, stride=stride))
    shown: set[int] = set()  # tracks whose body is on screen
    meshed: set[int] = set()  # tracks whose mesh triangles are logged (static, once)
    for record in itertools.chain([first_record], records):
        frame = next(frames)
        if frame.index != record["frame"]:
            found = record["frame"]
            raise InputError(f"Results {run.results.path} have frame {found} where the video has {frame.index}.")
        recording.set_time("frame", sequence=int(record["frame"]))
        recording.set_time("time", duration=float(record["time"]))
        image = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])[1]
        recording.log("world/camera/image", rr.EncodedImage(contents=encoded.tobytes(), media_type="image/jpeg"))
        shown_rows = np.asarray(record["states"]) == SHOWN_STATE
        ids = record["track_ids"][shown_rows].tolist()
        boxes = np.asarray(record["boxes"], dtype=np.float32)[shown_rows]
        recording.log(
            "world/camera/image/tracks",
            rr.Boxes2D(
                array=boxes,
                array_format=rr.Box2DFormat.XYXY,
                labels=[str(track_id) for track_id in ids],
                colors=[track_colour(track_id) for track_id in ids],
            ),
        )
        posed = set()
        if body_model is not None:
            posed = _log_bodies(rr, recording, record, body_model, ground, meshes, meshed)
        for track_id in shown - posed:
            recording.log(f"world/people/{track_id}", rr.Clear(recursive=True))
        shown = posed
    del recording  # closes the file sink and writes the footer
    return output


def _log_scene(rr, recording, run: ExportRun, ground) -> None:
    """The static part: axes, the camera and its pinhole, the ground trajectories."""
    width, height = run.image_size
    if ground is not None:
        recording.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        recording.log(
            "world/camera",
            rr.Transform3D(translation=[0.0, 0.0, ground.camera_height], mat3x3=ground.rotation),
            static=True,
        )
        focal = ground.focal
        recording.log("world/trajectories", _trajectories(rr, run, ground), static=True)
    else:
        recording.log("world", rr.ViewCoordinates.RDF, static=True)
        focal = _run_focal(run)
    recording.log(
        "world/camera",
        rr.Pinhole(focal_length=focal, width=width, height=height, camera_xyz=rr.ViewCoordinates.RDF),
        static=True,
    )


@torch.inference_mode()
def _log_bodies(rr, recording, record: dict, body_model, ground, meshes: bool, meshed: set[int]) -> set[int]:
    """Log the posed tracks' meshes and skeletons in the world frame (a mesh's triangles and colour once, static,
    for each track in `meshed`); returns their ids."""
    values = {key: np.asarray(record[key], dtype=np.float32) for key in MESH_KEYS}
    rows = np.isfinite(values["cam_t"]).all(axis=1) & np.asarray(record["has_pose"], dtype=bool)
    rows = np.flatnonzero(rows & (np.asarray(record["states"]) == SHOWN_STATE))
    if len(rows) == 0:
        return set()
    device = body_model.faces.device
    tensors = {key: torch.as_tensor(value[rows], device=device) for key, value in values.items()}
    cam_t = record["cam_t"][rows].astype(np.float64)
    joints = record["joints_3d"][rows].astype(np.float64) - cam_t[:, None]
    if ground is not None:
        turn, offsets = ground.place_bodies(joints, record["boxes"][rows])
    else:
        turn, offsets = np.eye(3), cam_t
    vertices = None
    if meshes:  # posed untranslated, in the same body frame as `joints`
        posed = body_model(tensors["smpl_global_orient"], tensors["smpl_body_pose"], tensors["smpl_betas"])
        vertices = posed.vertices.cpu().numpy().astype(np.float64)
    logged = set()
    for index, row in enumerate(rows.tolist()):
        if not np.isfinite(offsets[index]).all():
            continue
        track_id = int(record["track_ids"][row])
        colour = track_colour(track_id)
        path = f"world/people/{track_id}"
        world_joints = joints[index] @ turn.T + offsets[index]
        recording.log(
            f"{path}/skeleton",
            rr.LineStrips3D([[world_joints[a], world_joints[b]] for a, b in BONES], colors=colour),
        )
        if vertices is not None:
            if track_id not in meshed:
                triangles = body_model.faces.cpu().numpy().astype(np.uint32)
                mesh = rr.Mesh3D.from_fields(triangle_indices=triangles, albedo_factor=[*colour, 255])
                recording.log(f"{path}/mesh", mesh, static=True)
                meshed.add(track_id)
            world_vertices = (vertices[index] @ turn.T + offsets[index]).astype(np.float32)
            recording.log(f"{path}/mesh", rr.Mesh3D.from_fields(vertex_positions=world_vertices))
        logged.add(track_id)
    return logged


def _trajectories(rr, run: ExportRun, ground):
    """Each track's ground positions (matched frames) as one line strip, in its colour."""
    paths: dict[int, list[np.ndarray]] = {}
    for record in run.records():
        rows = np.flatnonzero(matched_rows(record) & (np.asarray(record["states"]) == SHOWN_STATE))
        feet = box_feet_and_heads(np.asarray(record["boxes"], dtype=np.float64)[rows])[0]
        for track_id, point in zip(record["track_ids"][rows].tolist(), ground.ground_points(feet)):
            if np.isfinite(point).all():
                paths.setdefault(track_id, []).append(np.append(point, 0.0))
    ids = sorted(paths)
    return rr.LineStrips3D(
        [np.stack(paths[track_id]) for track_id in ids],
        colors=[track_colour(track_id) for track_id in ids],
        labels=[str(track_id) for track_id in ids],
    )


def _run_focal(run: ExportRun) -> float:
    """The run's own focal length (its first body), or HMR2.0's convention when it has none."""
    for record in run.results.frames():
        focal = np.asarray(record.get("focal_length", []), dtype=np.float64)
        focal = focal[np.isfinite(focal)]
        if len(focal):
            return float(focal[0])
    return 5000.0 / 256.0 * max(run.image_size)

