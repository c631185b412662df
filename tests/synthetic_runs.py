"""A small finished run written through the results writer, whose people stand and walk upright on a known ground
plane seen by a known camera: what the export, smoothing, ground and bird's-eye tests read.

Three people walk straight lines on the ground 8-14 m in front of a camera 5 m up, pitched 20° down (focal 400 px,
320×240 frames, 10 fps). Their bodies are written as a regressor would: the run's focal length convention (5000/256
× the longer side), cam_t placing the body where it projects in the true camera, joints posed by the body model,
noisy joint rotations; BlazePose-like landmarks are exact projections of the heels and face. Track 1 is tentative
for two frames, confirmed, then lost for two frames (NaN bodies) and has one frame without a pose; track 3 lives two
tentative frames and is never confirmed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from models.body import BodyModel
from models.camera import project
from tracker.ground import GroundPlane
from tracker.io import ResultsWriter
from tracker.render import H264Writer
from tracker.schema import body_keys

WIDTH, HEIGHT, FPS, FRAMES = 320, 240, 10.0, 24
CUT = 13  # the frame that starts a second shot (only its `cut` flag says so)
RUN_FOCAL = 5000.0 / 256.0 * WIDTH
TRUE_CAMERA = GroundPlane(
    focal=400.0,
    principal_point=(WIDTH / 2, HEIGHT / 2),
    pitch=math.radians(20.0),
    roll=math.radians(1.0),
    camera_height=5.0,
    person_height=1.7,
    cue="true",
    residual=0.0,
    focal_uncertainty=0.0,
    observations=0,
)
# track id → (first frame, last frame, start on the ground (x, y) metres, velocity m/s)
PEOPLE = {
    1: (1, 24, (-2.0, 9.0), (0.9, 0.6)),
    2: (5, 24, (2.5, 13.0), (-1.0, -0.3)),
    3: (8, 9, (0.0, 11.0), (0.0, 1.0)),
}
LOST = {1: (12, 13)}  # frames where the track is lost (predicted box, no body)
UNPOSED = {1: 16}  # a frame where the track's fit was not trusted (template body, has_pose false)
TENTATIVE_HITS = 2
HEEL_HEIGHT, FACE_HEIGHT = 0.03, 1.58  # the landmark cue's heights (tracker.ground.LANDMARK_CUE)
PELVIS_HEIGHT = 0.9  # the shipped body's pelvis above its soles, about


@dataclass
class SyntheticRun:
    """The run folder, its video, and the truth: per (frame, track) the ground position."""

    folder: Path
    video: Path
    positions: dict[tuple[int, int], np.ndarray]


def true_pixels(points: np.ndarray) -> np.ndarray:
    """Pixels N×2 of ground-frame points N×3 in the true camera."""
    camera = (points - np.array([0.0, 0.0, TRUE_CAMERA.camera_height])) @ TRUE_CAMERA.rotation
    return TRUE_CAMERA.focal * camera[:, :2] / camera[:, 2:3] + np.asarray(TRUE_CAMERA.principal_point)


def write_synthetic_run(folder: Path, body_model: BodyModel, seed: int = 0) -> SyntheticRun:
    """Write the run (results.phx, tracks.mot.txt and a video of grey frames) into `folder`."""
    rng = np.random.default_rng(seed)
    video = folder / "video.mp4"
    writer = H264Writer(video, FPS, (WIDTH, HEIGHT), crf=30, preset="ultrafast")
    for index in range(FRAMES):
        writer.write(np.full((HEIGHT, WIDTH, 3), 40 + 8 * index, dtype=np.uint8))
    writer.close()
    header = {
        "video": str(video),
        "name": "synthetic",
        "fps": FPS,
        "width": WIDTH,
        "height": HEIGHT,
        "num_frames": FRAMES,
        "frame_numbers": [1, FRAMES, 1],
        "regressor": "blazepose",
        "config": {"body": {"_target_": "models.body.load_body_model"}, "smooth": None},
    }
    positions: dict[tuple[int, int], np.ndarray] = {}
    hits: dict[int, int] = {}
    with ResultsWriter(folder, header, ["confirmed"], body_keys(True)) as results:
        for frame in range(1, FRAMES + 1):
            rows = []
            for track_id, (first, last, start, velocity) in PEOPLE.items():
                if not first <= frame <= last:
                    continue
                time = (frame - first) / FPS
                ground = np.asarray(start) + time * np.asarray(velocity)
                lost = LOST.get(track_id, (0, -1))
                matched = not lost[0] <= frame <= lost[1]
                hits[track_id] = hits.get(track_id, 0) + matched
                state = "lost" if not matched else ("tentative" if hits[track_id] <= TENTATIVE_HITS else "confirmed")
                if track_id == 3 and hits[track_id] > TENTATIVE_HITS:
                    continue
                heading = math.atan2(velocity[1], velocity[0])
                rows.append((track_id, ground, heading, state, matched, UNPOSED.get(track_id) != frame))
                if matched:
                    positions[(frame, track_id)] = ground
            results.write_frame(_record(frame, rows, body_model, rng))
    return SyntheticRun(folder, video, positions)


def _record(frame: int, rows: list, body_model: BodyModel, rng: np.random.Generator) -> dict:
    count = len(rows)
    record = {
        "frame": frame,
        "time": (frame - 1) / FPS,
        "cut": frame == CUT,
        "track_ids": np.array([row[0] for row in rows], dtype=np.int64),
        "boxes": np.zeros((count, 4), np.float32),
        "scores": np.full(count, 0.9, np.float32),
        "states": np.array([row[3] for row in rows]),
        "smpl_global_orient": np.full((count, 1, 3, 3), np.nan, np.float32),
        "smpl_body_pose": np.full((count, 23, 3, 3), np.nan, np.float32),
        "smpl_betas": np.full((count, 10), np.nan, np.float32),
        "cam_t": np.full((count, 3), np.nan, np.float32),
        "focal_length": np.full(count, np.nan, np.float32),
        "joints_3d": np.full((count, 24, 3), np.nan, np.float32),
        "joints_2d": np.full((count, 24, 2), np.nan, np.float32),
        "has_pose": np.zeros(count, bool),
        "landmarks_2d": np.full((count, 33, 2), np.nan, np.float32),
        "landmark_visibility": np.full((count, 33), np.nan, np.float32),
        "landmarks_world": np.full((count, 33, 3), np.nan, np.float32),
        "pose_score": np.full(count, np.nan, np.float32),
        "fit_error": np.full(count, np.nan, np.float32),
        "reliable": np.zeros(count, bool),
    }
    for index, (_, ground, heading, _, matched, posed) in enumerate(rows):
        foot, head = true_pixels(np.array([[*ground, 0.0], [*ground, 1.7]]))
        half_width = 0.2 * (foot[1] - head[1])
        record["boxes"][index] = [foot[0] - half_width, head[1], foot[0] + half_width, foot[1]]
        if not matched:
            continue
        _body(record, index, ground, heading, posed, body_model, rng)
    return record


def _body(record, index, ground, heading, posed, body_model, rng) -> None:
    """A body standing upright at `ground` facing `heading`, written in the run's camera convention."""
    # SMPL's body frame (x left, y up, z front) in the ground frame, then in the true camera's frame.
    front = np.array([math.cos(heading), math.sin(heading), 0.0])
    up = np.array([0.0, 0.0, 1.0])
    body_in_ground = np.stack([np.cross(up, front), up, front], axis=1)
    root = TRUE_CAMERA.rotation.T @ body_in_ground
    pose = Rotation.from_rotvec(rng.normal(0.0, 0.08, (23, 3))).as_matrix() if posed else np.tile(np.eye(3), (23, 1, 1))
    rotations = torch.as_tensor(np.concatenate([root[None], pose]), dtype=torch.float32)[None]
    betas = torch.zeros(1, 10)
    relative = body_model.joints(rotations[:, :1], rotations[:, 1:], betas)[0].numpy().astype(np.float64)
    # The pelvis where it stands in the true camera, moved along its depth to the run's focal length.
    pelvis_ground = np.array([*ground, PELVIS_HEIGHT])
    pelvis_camera = (pelvis_ground - np.array([0.0, 0.0, TRUE_CAMERA.camera_height])) @ TRUE_CAMERA.rotation
    cam_t = pelvis_camera * np.array([1.0, 1.0, RUN_FOCAL / TRUE_CAMERA.focal]) - relative[0]
    cam_t_tensor = torch.as_tensor(cam_t, dtype=torch.float32)[None]
    joints = torch.as_tensor(relative, dtype=torch.float32)[None] + cam_t_tensor[:, None]
    size = torch.tensor([[WIDTH, HEIGHT]], dtype=torch.float32)
    pixels = project(joints - cam_t_tensor[:, None], cam_t_tensor, torch.tensor([RUN_FOCAL]), size)
    heel, face = true_pixels(np.array([[*ground, HEEL_HEIGHT], [*ground, FACE_HEIGHT]]))
    landmarks = np.tile(face, (33, 1))
    landmarks[[29, 30]] = heel
    record["smpl_global_orient"][index] = root[None]
    record["smpl_body_pose"][index] = pose
    record["smpl_betas"][index] = 0.0
    record["cam_t"][index] = cam_t
    record["focal_length"][index] = RUN_FOCAL
    record["joints_3d"][index] = joints[0].numpy()
    record["joints_2d"][index] = pixels[0].numpy()
    record["has_pose"][index] = posed
    record["landmarks_2d"][index] = landmarks
    record["landmark_visibility"][index] = 1.0
    record["landmarks_world"][index] = 0.0
    record["pose_score"][index] = 0.9
    record["fit_error"][index] = 1.0
    record["reliable"][index] = posed
