"""Temporal smoothing of tracked bodies, one track at a time: SMPL rotations, body position and shape.

Rotations are filtered as unit quaternions, never as matrix entries: the causal one-euro filter moves its estimate
along the geodesic towards each new rotation (q ← q·exp(α·log(q⁻¹·q_new))), with a cutoff that rises with the
joint's angular speed; the offline Savitzky–Golay and Gaussian filters work on quaternions made sign-continuous
along the track and renormalised afterwards. The body's position is filtered as what the image measures: where its
root lands in the image (in image sizes: pixels over the longer side) and its log depth, whose error grows with the
depth (the depth itself is a guess from the body's size). Shape coefficients are filtered as they are.

A track is filtered in segments: a gap of more missing frames than the filter reaches (`max_gap`) starts a new
segment; shorter gaps are bridged (nlerp, linear) only to keep the samples evenly spaced, and nothing is written
into the gap itself. Rows without a pose estimate (`has_pose` false) are left as they are and count as missing.
Filtered rows get their joints posed again through the body model, so joints always match the parameters.

`TrackSmoother` is the run's hook (`smooth=one_euro`), applied to each tracked frame before it is written;
`smooth_results` is the export's offline path (any filter).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter
from scipy.spatial.transform import Rotation

from models.body import BodyModel
from models.camera import project
from models.structures import BodyArrays, InputError
from models.torch_threads import torch_threads
from tracker.io import Results
from tracker.tracker import TrackedFrame

JOINTS = 24  # SMPL rotations per body: the root and 23 body joints
# The per-box keys a filter changes: the parameters it filters and the joints posed from them.
SMOOTHED_KEYS = ("smpl_global_orient", "smpl_body_pose", "smpl_betas", "cam_t", "joints_3d", "joints_2d")


@dataclass(frozen=True)
class OneEuro:
    """The one-euro filter of Casiez et al. (CHI 2012), causal: a low-pass whose cutoff (Hz) is `min_cutoff` at rest
    and rises by `beta_rotation` per rad/s of a joint's angular speed, by `beta_position` per image size/s of the
    body's speed across the image and by `beta_depth` per unit/s of its log depth, so slow motion is smoothed hard and
    fast motion keeps up. Speeds are low-passed at `derivative_cutoff`. A track that misses more than `max_gap` frames
    starts afresh."""

    min_cutoff: float = 1.0
    beta_rotation: float = 1.0
    beta_position: float = 50.0
    beta_depth: float = 0.0
    derivative_cutoff: float = 1.0
    max_gap: int = 2

    def __post_init__(self) -> None:
        _check_positive("smooth.min_cutoff", self.min_cutoff)
        _check_positive("smooth.derivative_cutoff", self.derivative_cutoff)
        for name in ("beta_rotation", "beta_position", "beta_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise InputError(f"smooth.{name} must be zero or a positive number, got {value!r}.")
        if isinstance(self.max_gap, bool) or not isinstance(self.max_gap, int) or self.max_gap < 0:
            raise InputError(f"smooth.max_gap must be a whole number of frames >= 0, got {self.max_gap!r}.")

    @property
    def causal(self) -> bool:
        return True


@dataclass(frozen=True)
class SavitzkyGolay:
    """Offline Savitzky–Golay filter: a polynomial of degree `order` fitted over `window` frames (odd) around each
    frame; keeps peaks better than a Gaussian of the same reach. Gaps of more than window // 2 frames split."""

    window: int = 9
    order: int = 2

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 3 or self.window % 2 == 0:
            raise InputError(f"smooth.window must be an odd number of frames >= 3, got {self.window!r}.")
        if isinstance(self.order, bool) or not isinstance(self.order, int) or not 0 <= self.order < self.window:
            raise InputError(f"smooth.order must be a whole number below smooth.window, got {self.order!r}.")

    @property
    def causal(self) -> bool:
        return False

    @property
    def max_gap(self) -> int:
        return self.window // 2


@dataclass(frozen=True)
class Gaussian:
    """Offline Gaussian filter of `sigma` frames, cut at `truncate` sigmas; gaps wider than that reach split."""

    sigma: float = 1.0
    truncate: float = 3.0

    def __post_init__(self) -> None:
        _check_positive("smooth.sigma", self.sigma)
        _check_positive("smooth.truncate", self.truncate)

    @property
    def causal(self) -> bool:
        return False

    @property
    def max_gap(self) -> int:
        return max(1, math.ceil(self.truncate * self.sigma))


SmoothingFilter = OneEuro | SavitzkyGolay | Gaussian


@dataclass
class BodySeries:
    """One track's bodies at the frames where it has a pose (T rows, in order): `steps` are processed-frame indices
    (a missing frame is a missing step), `times` seconds, `rotations` T×24×3×3 (root first), `translations` T×3
    (cam_t, metres), `focal` T (pixels), `betas` T×K."""

    steps: np.ndarray
    times: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    focal: np.ndarray
    betas: np.ndarray

    def __len__(self) -> int:
        return len(self.steps)


def smooth_track(series: BodySeries, smoothing: SmoothingFilter, image_size: tuple[int, int]) -> BodySeries:
    """The series filtered by `smoothing` segment by segment (same steps and times) for a video of `image_size`."""
    if len(series) == 0:
        return series
    quaternions = _quaternions(series.rotations)
    position = _position(series.translations, series.focal, max(image_size))
    betas = series.betas.astype(np.float64, copy=True)
    for rows in segments(series.steps, smoothing.max_gap):
        if isinstance(smoothing, OneEuro):
            state = None
            for row in rows.tolist():
                sample = _Sample(quaternions[row : row + 1], position[row : row + 1], betas[row : row + 1])
                state = _one_euro(smoothing, state, sample, float(series.times[row]))
                quaternions[row], position[row], betas[row] = state.quaternions[0], state.position[0], state.betas[0]
            continue
        steps = series.steps[rows]
        quaternions[rows] = _normalised(_offline(_continuous(quaternions[rows]), steps, smoothing))
        position[rows] = _offline(position[rows], steps, smoothing)
        betas[rows] = _offline(betas[rows], steps, smoothing)
    return replace(
        series,
        rotations=_matrices(quaternions),
        translations=_translation(position, series.focal, max(image_size)),
        betas=betas,
    )


def bridge_gaps(series: BodySeries) -> tuple[BodySeries, np.ndarray]:
    """The series at every step from its first to its last, missing steps filled by interpolation (rotations along
    the shorter arc, nlerp of sign-continuous quaternions; the rest linearly); also which steps were observed."""
    grid = np.arange(series.steps[0], series.steps[-1] + 1)
    observed = np.isin(grid, series.steps)
    if observed.all():
        return series, observed
    quaternions = _normalised(_fill(_continuous(_quaternions(series.rotations)), series.steps, grid))
    filled = BodySeries(
        steps=grid,
        times=_fill(series.times, series.steps, grid),
        rotations=_matrices(quaternions),
        translations=_fill(series.translations, series.steps, grid),
        focal=_fill(series.focal, series.steps, grid),
        betas=_fill(series.betas, series.steps, grid),
    )
    return filled, observed


def segments(steps: np.ndarray, max_gap: int) -> list[np.ndarray]:
    """Row indices of the runs of `steps` in which no more than `max_gap` steps are missing between neighbours."""
    breaks = np.flatnonzero(np.diff(steps) - 1 > max_gap) + 1
    return np.split(np.arange(len(steps)), breaks)


def smooth_results(
    results: Results, smoothing: SmoothingFilter, body_model: BodyModel
) -> dict[int, dict[int, dict[str, np.ndarray]]]:
    """Every track of a run filtered offline: frame → track id → its filtered `SMOOTHED_KEYS` (posed rows only;
    empty when the run has no bodies). `smoothed_records` applies them to the records."""
    first, _, stride = results.header["frame_numbers"]
    image_size = (int(results.header["width"]), int(results.header["height"]))
    by_frame: dict[int, dict[int, dict[str, np.ndarray]]] = {}
    for track_id in results.track_ids():
        track = results.track(track_id)
        bodies = BodyArrays.from_arrays(track)
        if bodies is None:
            return {}
        rows = np.flatnonzero(posed_rows(bodies))
        if len(rows) == 0:
            continue
        steps = (track["frames"][rows] - first) // stride
        series = smooth_track(body_series(bodies, rows, steps, track["times"][rows]), smoothing, image_size)
        smoothed = with_series(bodies, rows, series, body_model, image_size).arrays()
        for row in rows.tolist():
            by_frame.setdefault(int(track["frames"][row]), {})[track_id] = {
                key: smoothed[key][row] for key in SMOOTHED_KEYS
            }
    return by_frame


def smoothed_records(results: Results, by_frame: dict[int, dict[int, dict[str, np.ndarray]]]) -> Iterator[dict]:
    """The run's records in order, with the rows that `smooth_results` filtered replaced (other keys untouched)."""
    for record in results.frames():
        changes = by_frame.get(record["frame"])
        if changes:
            record = dict(record)
            for key in SMOOTHED_KEYS:
                record[key] = np.array(record[key], copy=True)
            for row, track_id in enumerate(record["track_ids"].tolist()):
                for key, value in changes.get(track_id, {}).items():
                    record[key][row] = value
        yield record


class TrackSmoother:
    """The run's smoothing hook: `tracked = smoother.apply(tracked)` for each frame, before it is written.

    Keeps one causal filter state per live track; rows with a pose estimate are filtered (all rows of a frame at
    once) and their joints posed again with `body_model`; other rows pass unchanged. Meshes posed before filtering
    are dropped (the overlay poses them again from the filtered parameters)."""

    def __init__(self, smoothing: SmoothingFilter, body_model: BodyModel) -> None:
        if not smoothing.causal:
            raise InputError(
                f"Smoothing {type(smoothing).__name__} is offline: a run can only use smooth=one_euro "
                "(tools/export.py applies the offline filters)."
            )
        self.smoothing = smoothing
        self.body_model = body_model
        self._states: dict[int, _State] = {}
        self._last_seen: dict[int, int] = {}
        self._step = -1  # frames seen: gaps are counted in processed frames, whatever the stride

    def state_dict(self) -> dict:
        """The filter state of each track, when each was last seen and the frames seen (for a checkpoint)."""
        ids = list(self._states)
        return {
            "step": self._step,
            "last_seen": [[track_id, step] for track_id, step in self._last_seen.items()],
            "ids": ids,
            "states": [{**{name: getattr(self._states[t], name) for name in _STATE_ARRAYS},
                        "time": float(self._states[t].time)} for t in ids],  # fmt: skip
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` returned."""
        self._step = int(state["step"])
        self._last_seen = {int(track_id): int(step) for track_id, step in state["last_seen"]}
        self._states = {int(t): _State(**row) for t, row in zip(state["ids"], state["states"])}

    def apply(self, tracked: TrackedFrame) -> TrackedFrame:
        """The frame with its posed tracks' bodies filtered (a new TrackedFrame; the input is not changed)."""
        self._step += 1
        alive = set(tracked.track_ids.tolist())
        self._states = {track_id: state for track_id, state in self._states.items() if track_id in alive}
        bodies = tracked.bodies
        if bodies is None:
            return tracked
        rows = np.flatnonzero(posed_rows(bodies))
        if len(rows) == 0:
            return tracked
        image_size = (tracked.frame.width, tracked.frame.height)
        ids = tracked.track_ids[rows].tolist()
        gap = self.smoothing.max_gap
        for track_id in ids:
            if track_id in self._states and self._step - self._last_seen[track_id] - 1 > gap:
                del self._states[track_id]
            self._last_seen[track_id] = self._step
        self._last_seen = {track_id: step for track_id, step in self._last_seen.items() if track_id in alive}
        series = body_series(bodies, rows, np.full(len(rows), self._step), tracked.frame.time)
        sample = _Sample(
            _quaternions(series.rotations),
            _position(series.translations, series.focal, max(image_size)),
            series.betas,
        )
        known = np.array([track_id in self._states for track_id in ids])
        filtered = _State.start(sample, tracked.frame.time)
        if known.any():
            previous = _State.stack([self._states[track_id] for track_id in ids if track_id in self._states])
            filtered = filtered.put(known, _one_euro(self.smoothing, previous, sample.take(known), tracked.frame.time))
        self._states.update({track_id: filtered.row(index) for index, track_id in enumerate(ids)})
        series = replace(
            series,
            rotations=_matrices(filtered.quaternions),
            translations=_translation(filtered.position, series.focal, max(image_size)),
            betas=filtered.betas,
        )
        return replace(tracked, bodies=with_series(bodies, rows, series, self.body_model, image_size), vertices=None)


def posed_rows(bodies: BodyArrays) -> np.ndarray:
    """Rows whose body is a pose estimate with finite SMPL parameters (bool mask)."""
    finite = np.ones(len(bodies), dtype=bool)
    for values in (bodies.smpl_global_orient, bodies.smpl_body_pose, bodies.smpl_betas, bodies.cam_t):
        finite &= np.isfinite(values.reshape(len(bodies), -1)).all(axis=1)
    return finite & np.isfinite(bodies.focal_length) & np.asarray(bodies.has_pose, dtype=bool)


def body_series(bodies: BodyArrays, rows: np.ndarray, steps: np.ndarray, times: np.ndarray | float) -> BodySeries:
    """The SMPL parameters of `rows` of `bodies` as a series (float64)."""
    rotations = np.concatenate([bodies.smpl_global_orient[rows], bodies.smpl_body_pose[rows]], axis=1)
    return BodySeries(
        steps=np.asarray(steps, dtype=np.int64),
        times=np.broadcast_to(np.asarray(times, dtype=np.float64), (len(rows),)).copy(),
        rotations=rotations.astype(np.float64),
        translations=bodies.cam_t[rows].astype(np.float64),
        focal=bodies.focal_length[rows].astype(np.float64),
        betas=bodies.smpl_betas[rows].astype(np.float64),
    )


@torch.inference_mode()
def with_series(
    bodies: BodyArrays, rows: np.ndarray, series: BodySeries, body_model: BodyModel, image_size: tuple[int, int]
) -> BodyArrays:
    """A copy of `bodies` whose `rows` take the series' parameters, with their joints posed again through
    `body_model` and projected with each row's focal length (principal point at the centre of `image_size`)."""
    arrays = {name: values.copy() for name, values in bodies.arrays().items()}
    device = body_model.skeleton.template.device
    rotations = torch.as_tensor(series.rotations, dtype=torch.float32, device=device)
    betas = torch.as_tensor(series.betas, dtype=torch.float32, device=device)
    translations = torch.as_tensor(series.translations, dtype=torch.float32, device=device)
    focal = torch.as_tensor(series.focal, dtype=torch.float32, device=device)
    size = torch.tensor(image_size, dtype=torch.float32, device=device).expand(len(rows), 2)
    with torch_threads(1):  # a few people's joints: one thread beats contended ones
        joints = body_model.joints(rotations[:, :1], rotations[:, 1:], betas, transl=translations)
        pixels = project(joints, torch.zeros_like(translations), focal, size)
    arrays["smpl_global_orient"][rows] = series.rotations[:, :1]
    arrays["smpl_body_pose"][rows] = series.rotations[:, 1:]
    arrays["smpl_betas"][rows] = series.betas
    arrays["cam_t"][rows] = series.translations
    arrays["joints_3d"][rows] = joints.cpu().numpy()
    arrays["joints_2d"][rows] = pixels.cpu().numpy()
    return BodyArrays(**arrays)


@dataclass
class _Sample:
    """K bodies as the filters see them: quaternions K×24×4 (x, y, z, w), position K×3 (root in the image in image
    sizes from the centre, and log depth), betas K×B."""

    quaternions: np.ndarray
    position: np.ndarray
    betas: np.ndarray

    def take(self, rows: np.ndarray) -> _Sample:
        return _Sample(self.quaternions[rows], self.position[rows], self.betas[rows])


_STATE_ARRAYS = ("quaternions", "position", "betas", "angular_speed", "speed")


@dataclass
class _State(_Sample):
    """K one-euro filters after their last sample: the estimates, their low-passed speeds (K×24×3 rad/s, K×3 per
    second) and the time of the last sample (one for all, or K)."""

    angular_speed: np.ndarray
    speed: np.ndarray
    time: float | np.ndarray

    @classmethod
    def start(cls, sample: _Sample, time: float) -> _State:
        """A filter that has seen one sample: estimates equal to it, at rest."""
        count = len(sample.position)
        return cls(sample.quaternions.copy(), sample.position.copy(), sample.betas.copy(),
                   np.zeros((count, JOINTS, 3)), np.zeros((count, 3)), time)  # fmt: skip

    @classmethod
    def stack(cls, states: list[_State]) -> _State:
        """One-row states as one state of their rows (each keeps its own time)."""
        stacked = {name: np.concatenate([getattr(state, name) for state in states]) for name in _STATE_ARRAYS}
        return cls(**stacked, time=np.array([state.time for state in states], dtype=np.float64))

    def put(self, rows: np.ndarray, other: _State) -> _State:
        """A copy with `rows` (bool mask) taken from `other`, which is at this state's time."""
        out = _State(**{name: getattr(self, name).copy() for name in _STATE_ARRAYS}, time=self.time)
        for name in _STATE_ARRAYS:
            getattr(out, name)[rows] = getattr(other, name)
        return out

    def row(self, index: int) -> _State:
        """Row `index` as a one-row state."""
        time = self.time[index] if np.ndim(self.time) else self.time
        return _State(**{name: getattr(self, name)[index : index + 1] for name in _STATE_ARRAYS}, time=float(time))


def _one_euro(smoothing: OneEuro, state: _State | None, sample: _Sample, time: float) -> _State:
    """K samples at `time` through their filters (a new state; no state, or no time elapsed, restarts them)."""
    if state is None:
        return _State.start(sample, time)
    dt = np.broadcast_to(time - np.asarray(state.time, dtype=np.float64), (len(sample.position),))
    if not (dt > 0).all():
        return _State.start(sample, time)
    derivative_alpha = _alpha(smoothing.derivative_cutoff, dt)
    # Rotations: the step from each estimate to its sample, in the estimate's frame, as a rotation vector.
    steps = _rotation_vector(_multiply(_conjugate(state.quaternions), sample.quaternions))
    angular_speed = state.angular_speed + derivative_alpha[:, None, None] * (
        steps / dt[:, None, None] - state.angular_speed
    )
    cutoff = smoothing.min_cutoff + smoothing.beta_rotation * np.linalg.norm(angular_speed, axis=-1)
    moved = _from_rotation_vector(_alpha(cutoff, dt[:, None])[..., None] * steps)
    quaternions = _normalised(_multiply(state.quaternions, moved))
    # Position across the image, depth and shape: the same filter on vectors (shape at the resting cutoff).
    speed = state.speed + derivative_alpha[:, None] * ((sample.position - state.position) / dt[:, None] - state.speed)
    across = smoothing.min_cutoff + smoothing.beta_position * np.linalg.norm(speed[:, :2], axis=-1)
    along = smoothing.min_cutoff + smoothing.beta_depth * np.abs(speed[:, 2])
    alphas = np.stack([_alpha(across, dt), _alpha(across, dt), _alpha(along, dt)], axis=1)
    position = state.position + alphas * (sample.position - state.position)
    betas = state.betas + _alpha(smoothing.min_cutoff, dt)[:, None] * (sample.betas - state.betas)
    return _State(quaternions, position, betas, angular_speed, speed, time)


def _alpha(cutoff: float | np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Smoothing factor of a first-order low-pass at `cutoff` Hz for a sample `dt` seconds after the last."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


def _offline(values: np.ndarray, steps: np.ndarray, smoothing: SavitzkyGolay | Gaussian) -> np.ndarray:
    """One segment's values (T×…) filtered along time on its evenly spaced steps (short gaps bridged linearly),
    returned at the segment's own steps."""
    grid = np.arange(steps[0], steps[-1] + 1)
    flat = _fill(values, steps, grid).reshape(len(grid), -1)
    if isinstance(smoothing, Gaussian):
        filtered = gaussian_filter1d(flat, smoothing.sigma, axis=0, mode="nearest", truncate=smoothing.truncate)
    else:
        window = min(smoothing.window, len(grid) if len(grid) % 2 else len(grid) - 1)
        filtered = flat if window <= smoothing.order else savgol_filter(flat, window, smoothing.order, axis=0)
    return filtered[steps - steps[0]].reshape(values.shape)


def _fill(values: np.ndarray, steps: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`values` (T×…, at `steps`) at every step of `grid`, linearly interpolated between the known ones."""
    if len(grid) == len(steps):
        return np.asarray(values, dtype=np.float64).copy()
    flat = np.asarray(values, dtype=np.float64).reshape(len(steps), -1)
    filled = np.stack([np.interp(grid, steps, column) for column in flat.T], axis=1)
    return filled.reshape((len(grid),) + np.shape(values)[1:])


def _position(translations: np.ndarray, focal: np.ndarray, longer_side: int) -> np.ndarray:
    """K×3 filter coordinates of K body translations: where the root lands in the image (offset from the principal
    point in image sizes) and its log depth."""
    depth = translations[:, 2]
    image = translations[:, :2] / depth[:, None] * (focal / longer_side)[:, None]
    return np.concatenate([image, np.log(depth)[:, None]], axis=1)


def _translation(position: np.ndarray, focal: np.ndarray, longer_side: int) -> np.ndarray:
    """Body translations K×3 back from filter coordinates."""
    depth = np.exp(position[:, 2])
    return np.concatenate([position[:, :2] * (longer_side / focal)[:, None] * depth[:, None], depth[:, None]], axis=1)


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """K×24×4 unit quaternions (x, y, z, w) of K×24×3×3 rotation matrices."""
    count = len(rotations)
    return Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_quat().reshape(count, JOINTS, 4)


def _matrices(quaternions: np.ndarray) -> np.ndarray:
    """K×24×3×3 rotation matrices of K×24×4 quaternions."""
    count = len(quaternions)
    return Rotation.from_quat(quaternions.reshape(-1, 4)).as_matrix().reshape(count, JOINTS, 3, 3)


def _continuous(quaternions: np.ndarray) -> np.ndarray:
    """T×24×4 quaternions with each sign chosen nearest its predecessor's (q and −q are one rotation: a filter must
    not average across the flip)."""
    out = quaternions.copy()
    for t in range(1, len(out)):
        flip = (out[t] * out[t - 1]).sum(axis=-1) < 0
        out[t, flip] *= -1
    return out


def _normalised(quaternions: np.ndarray) -> np.ndarray:
    return quaternions / np.linalg.norm(quaternions, axis=-1, keepdims=True)


def _conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def _multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products a·b of quaternion stacks (x, y, z, w)."""
    a_vector, a_scalar = a[..., :3], a[..., 3:]
    b_vector, b_scalar = b[..., :3], b[..., 3:]
    vector = a_scalar * b_vector + b_scalar * a_vector + np.cross(a_vector, b_vector)
    scalar = a_scalar * b_scalar - (a_vector * b_vector).sum(axis=-1, keepdims=True)
    return np.concatenate([vector, scalar], axis=-1)


def _rotation_vector(q: np.ndarray) -> np.ndarray:
    """Rotation vectors (axis × angle, the shorter way round) of unit quaternions."""
    q = np.where(q[..., 3:] < 0, -q, q)
    sine = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2 * np.arctan2(sine, q[..., 3:])
    factor = np.where(sine > 1e-8, angle / np.maximum(sine, 1e-12), 2.0 / np.maximum(q[..., 3:], 1e-12))
    return q[..., :3] * factor


def _from_rotation_vector(vectors: np.ndarray) -> np.ndarray:
    """Unit quaternions of rotation vectors."""
    angle = np.linalg.norm(vectors, axis=-1, keepdims=True)
    half_sinc = np.where(angle > 1e-8, np.sin(angle / 2) / np.maximum(angle, 1e-12), 0.5 - angle**2 / 48)
    return np.concatenate([vectors * half_sinc, np.cos(angle / 2)], axis=-1)


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{name} must be a positive number, got {value!r}.")
