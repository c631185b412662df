"""Each track's motion as an AMASS-style animation `.npz`, the convention of AMASS and of the SMPL-X Blender add-on:
axis-angle `poses` (T×165, SMPL-X layout: root, 21 body joints, then jaw, eyes and fingers, zero here), `trans`
(T×3 metres), `betas`, `gender` (a unicode string), `mocap_framerate` and `mocap_frame_rate` (Hz), in a Z-up world.

The world frame is the run's camera turned Z-up (`camera`: x right, y forward, z up = the camera's x, z, −y), or
the ground frame when the run gives a ground plane (`ground`: x right, y forward along the ground, z up, feet on
z = 0, see tracker.ground). `trans` is the body model's `transl` in that frame: the body model posed with
`root_orient`/`pose_body` (and SMPL's own hand joints, kept in `smpl_poses`), `frame_betas` and `trans` gives the
`joints` stored beside them. Confirmed tracks only; a track is cut where it has no pose for more than `bridge`
frames, and shorter gaps are interpolated (rotations along the shorter arc) and marked false in `observed`, as are
the frames the run itself filled (state `interpolated`, see tracker.gaps).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from models.structures import BodyArrays, InputError
from tracker.export.run import ExportRun
from tracker.ground import LEVEL_CAMERA
from tracker.smoothing import BodySeries, bridge_gaps, posed_rows, segments

FRAMES = ("camera", "ground")
SMPLX_POSE_SIZE = 165  # 55 SMPL-X joints × 3
BODY_JOINTS = 21  # SMPL joints 1..21, shared by SMPL, SMPL+H and SMPL-X
SMPL_JOINTS = 24
PELVIS = 0


def write_amass(
    run: ExportRun, folder: Path, frame: str = "camera", gender: str = "neutral", bridge: int = 3
) -> list[Path]:
    """Write one `.npz` per stretch of each confirmed track into `folder` (gaps of up to `bridge` frames without a
    pose are interpolated and flagged in `observed`; longer ones cut); returns the files written."""
    if frame not in FRAMES:
        raise InputError(f"AMASS frame must be one of {', '.join(FRAMES)}, got {frame!r}.")
    if not run.has_bodies:
        raise InputError(f"Results {run.results.path} hold no bodies: the AMASS export needs SMPL parameters.")
    ground = run.ground if frame == "ground" else None
    if frame == "ground" and ground is None:
        raise InputError(f"Results {run.results.path} give no ground plane (see the log): use frame=camera.")
    if isinstance(bridge, bool) or not isinstance(bridge, int) or bridge < 0:
        raise InputError(f"amass bridge must be a whole number of frames >= 0, got {bridge!r}.")
    rows: dict[int, list[dict]] = {}
    confirmed: set[int] = set()
    for index, record in enumerate(run.records()):
        confirmed.update(record["track_ids"][np.asarray(record["states"]) == "confirmed"].tolist())
        for row in np.flatnonzero(_posed(record)).tolist():
            rows.setdefault(int(record["track_ids"][row]), []).append(_row(record, row, index))
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for track_id in sorted(set(rows) & confirmed):
        track_rows = rows[track_id]
        steps = np.array([row["step"] for row in track_rows])
        for piece in segments(steps, bridge):
            stretch = _bridged([track_rows[i] for i in piece.tolist()])
            first, last = stretch["frames"][0], stretch["frames"][-1]
            path = folder / f"{run.name}_track{track_id:04d}_{first:06d}-{last:06d}.npz"
            np.savez(path, **amass_arrays(run, stretch, track_id, frame, gender))
            written.append(path)
    return written


def _bridged(rows: list[dict]) -> dict[str, np.ndarray]:
    """A stretch of one track's rows as arrays over every frame from its first to its last, gaps interpolated."""
    steps = np.array([row["step"] for row in rows])
    frames = np.array([row["frame"] for row in rows])
    series, observed = bridge_gaps(
        BodySeries(
            steps=steps,
            times=frames.astype(np.float64),  # carries the frame numbers through the interpolation
            rotations=np.stack([row["rotations"] for row in rows]),
            translations=np.stack([row["cam_t"] for row in rows]),
            focal=np.ones(len(rows)),
            betas=np.stack([row["betas"] for row in rows]),
        )
    )
    boxes = np.stack([np.interp(series.steps, steps, column) for column in np.stack([r["box"] for r in rows]).T], 1)
    filled_by_run = steps[[row["interpolated"] for row in rows]]
    return {
        "frames": np.round(series.times).astype(np.int64),
        "observed": observed & ~np.isin(series.steps, filled_by_run),
        "rotations": series.rotations,
        "cam_t": series.translations,
        "betas": series.betas,
        "boxes": boxes,
    }


def amass_arrays(
    run: ExportRun, stretch: dict[str, np.ndarray], track_id: int, frame: str, gender: str
) -> dict[str, np.ndarray]:
    """The arrays of one file: AMASS's keys and phalanx's (`smpl_poses`, `frame_betas`, `joints`, `frames`, ...).
    Joints are posed again in float64 (the results' float32 joints are ~1e-5 m coarse at the run's depths)."""
    rotations, betas, translations = stretch["rotations"], stretch["betas"], stretch["cam_t"]  # camera frame
    count = len(rotations)
    body = body_joints(run, rotations, betas)  # T×24×3, camera-oriented, pelvis at the rest pelvis
    rest_pelvis = body[:, PELVIS]
    if frame == "ground":
        turn, offsets = run.ground.place_bodies(body, stretch["boxes"])
    else:
        turn, offsets = LEVEL_CAMERA, translations @ LEVEL_CAMERA.T
    world_joints = body @ turn.T + offsets[:, None]
    if np.isnan(world_joints).any():
        raise InputError(f"Track {track_id} stands above the horizon of the ground plane in some frames.")
    rotations = rotations.copy()
    rotations[:, 0] = turn @ rotations[:, 0]
    axis_angle = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_rotvec().reshape(count, SMPL_JOINTS * 3)
    poses = np.zeros((count, SMPLX_POSE_SIZE))
    poses[:, : 3 * (BODY_JOINTS + 1)] = axis_angle[:, : 3 * (BODY_JOINTS + 1)]
    rate = run.fps
    return {
        "poses": poses,
        "trans": world_joints[:, PELVIS] - rest_pelvis,  # the root turns about the rest pelvis
        "betas": betas.mean(axis=0),
        "num_betas": np.array(betas.shape[1]),
        "gender": np.array(gender),
        "mocap_framerate": np.array(rate),
        "mocap_frame_rate": np.array(rate),
        "mocap_time_length": np.array(count / rate),
        "root_orient": poses[:, :3],
        "pose_body": poses[:, 3 : 3 * (BODY_JOINTS + 1)],
        "pose_jaw": poses[:, 66:69],
        "pose_eye": poses[:, 69:75],
        "pose_hand": poses[:, 75:],
        "smpl_poses": axis_angle,
        "frame_betas": betas,
        "joints": world_joints,
        "frames": stretch["frames"],
        "observed": stretch["observed"],
        "track_id": np.array(track_id),
        "coordinate_frame": np.array(frame),
    }


@torch.inference_mode()
def body_joints(run: ExportRun, rotations: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """T×24×3 joints (float64) of the run's body model posed with T×24×3×3 rotations and T×K betas, untranslated."""
    skeleton = copy.deepcopy(run.body_model.skeleton).to(device="cpu", dtype=torch.float64)
    shape = torch.as_tensor(betas, dtype=torch.float64)
    shape = torch.nn.functional.pad(shape, (0, run.body_model.num_betas - shape.shape[1]))
    return skeleton(torch.as_tensor(rotations, dtype=torch.float64), shape).numpy()


def _posed(record: dict) -> np.ndarray:
    """Rows of a record with a pose estimate and finite parameters."""
    bodies = BodyArrays.from_arrays(record)
    return np.zeros(len(record["track_ids"]), dtype=bool) if bodies is None else posed_rows(bodies)


def _row(record: dict, row: int, step: int) -> dict:
    rotations = np.concatenate([record["smpl_global_orient"][row], record["smpl_body_pose"][row]], axis=0)
    return {
        "frame": int(record["frame"]),
        "step": step,
        "rotations": rotations.astype(np.float64),
        "betas": record["smpl_betas"][row].astype(np.float64),
        "cam_t": record["cam_t"][row].astype(np.float64),
        "box": record["boxes"][row].astype(np.float64),
        "interpolated": bool(record["states"][row] == "interpolated"),
    }
