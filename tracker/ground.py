"""Where people stand: the static camera and the ground plane under the tracked people, estimated from the people
themselves, and positions and bodies expressed on that ground.

The run's 3D lives in a camera whose focal length is a convention (HMR2.0's 5000/256 × the longer image side, about
13× a real lens's for PETS09), so its depths are stretched and a plane fitted to the bodies' 3D feet would be a
stretched plane. The camera is calibrated from the people instead, as single-view metrology does: every posed
person stands upright on one plane, so the 2D point of their head must lie where the 2D point of their feet implies
for a person of `person_height`. Box heights alone fix the horizon but barely the focal length (box tops sit right
above box bottoms, so they carry no vertical vanishing point); the 2D feet and head points of the pose estimate do.
Focal length, pitch, roll and camera height are fitted to all posed, whole people by robust least squares (soft-L1
loss of the head error in person heights). The scale comes from `person_height`: positions are metric as far as
the people's mean height is close to it.

The ground frame: origin on the ground below the camera, x right, y forward (the optical axis laid on the ground),
z up, metres. A person stands where the bottom centre of their box meets the ground (`ground_points`); a posed body
is put there upright in the camera's orientation, its ankles above that point and its lowest foot joint on the
ground (`place_bodies`), which is the run's body with its depth (a guess from its size) replaced by the ground's.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from models.structures import InputError
from tracker.io import Results

PERSON_HEIGHT = 1.7  # metres: the height every person is assumed to have; it sets the scale
MIN_OBSERVATIONS = 30  # posed people needed for a calibration
MAX_FOCAL_UNCERTAINTY = 0.25  # a calibration whose focal length is less sure than ±25% (one sigma) is refused
# A weak prior keeps too little data from running to an infinitely long lens: the focal length is about 1.2 times
# the longer image side give or take a factor of two, with the weight of a few people.
FOCAL_PRIOR, FOCAL_PRIOR_WEIGHT = 1.2, 0.05
MAX_OBSERVATIONS = 5000  # a long run is subsampled evenly to this many
BORDER = 3.0  # pixels: boxes this close to an image edge may be cut and are not used to calibrate
MIN_VISIBILITY = 0.5  # landmarks less likely visible than this do not calibrate
ANKLES, FEET = (7, 8), (10, 11)  # SMPL joints
# Rest-pose heights (metres above the soles) of SMPL joints on the shipped 1.70 m body: the ankles and foot joints.
ANKLE_HEIGHT, FOOT_JOINT_HEIGHT = 0.076, 0.027
# Camera frame (x right, y down, z forward) to the ground frame of a level camera (x right, y forward, z up).
LEVEL_CAMERA = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class UprightCue:
    """The 2D points that stand for a person's feet and head (means of these rows of a per-box `key`), and their
    heights above the ground in metres for a person 1.70 m tall."""

    key: str
    feet: tuple[int, ...]
    head: tuple[int, ...]
    foot_height: float
    head_height: float


# BlazePose's heels and its face (nose, eyes, ears: about eye level) when the run has landmarks: measured directly.
LANDMARK_CUE = UprightCue("landmarks_2d", feet=(29, 30), head=(0, 2, 5, 7, 8), foot_height=0.03, head_height=1.58)
# Otherwise the posed body's ankles and head joint (their heights on the shipped body).
JOINT_CUE = UprightCue("joints_2d", feet=ANKLES, head=(15,), foot_height=ANKLE_HEIGHT, head_height=1.55)


@dataclass(frozen=True)
class GroundPlane:
    """A static pinhole camera over the ground plane z = 0: `focal` (pixels), `principal_point` (pixels, the image
    centre), tilted down by `pitch` and rolled by `roll` (radians), its centre at (0, 0, `camera_height`) metres.
    `person_height` set the scale; `cue` names the 2D points it was fitted to, `residual` is the median head error
    of the fit in person heights, `focal_uncertainty` the relative standard error of the focal length and
    `observations` the number of people it used."""

    focal: float
    principal_point: tuple[float, float]
    pitch: float
    roll: float
    camera_height: float
    person_height: float
    cue: str
    residual: float
    focal_uncertainty: float
    observations: int

    @property
    def rotation(self) -> np.ndarray:
        """Camera frame → ground frame, 3×3."""
        return camera_rotation(self.pitch, self.roll)

    def ground_points(self, pixels: np.ndarray) -> np.ndarray:
        """N×2 ground coordinates (x, y metres) of N×2 image pixels on the ground; NaN above the horizon."""
        return _plane_points(pixels, self.focal, self.principal_point, self.rotation, self.camera_height)[:, :2]

    def camera_to_ground(self, points: np.ndarray) -> np.ndarray:
        """Points …×3 of this camera's frame (x right, y down, z forward, metres) in the ground frame."""
        return np.asarray(points, dtype=np.float64) @ self.rotation.T + np.array([0.0, 0.0, self.camera_height])

    def place_bodies(self, joints: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where N bodies stand: given their posed joints N×24×3 relative to any origin in a camera-oriented frame
        and their N×4 xyxy boxes, the rotation (3×3) and the N×3 offsets that take those joints into the ground
        frame (ground = joints @ rotation.T + offset): the ankles' midpoint above the ground point of the box's
        bottom centre and the lowest ankle or foot joint at its rest height. Rows above the horizon are NaN."""
        rotated = np.asarray(joints, dtype=np.float64) @ self.rotation.T
        feet, _ = box_feet_and_heads(np.asarray(boxes, dtype=np.float64))
        ground = self.ground_points(feet)
        ankles = rotated[:, list(ANKLES), :2].mean(axis=1)
        lowest = rotated[:, list(ANKLES + FEET), 2].min(axis=1)
        offsets = np.concatenate([ground - ankles, (FOOT_JOINT_HEIGHT - lowest)[:, None]], axis=1)
        return self.rotation, offsets

    def to_dict(self) -> dict:
        """Plain numbers, for JSON and the log."""
        return {
            "focal_px": self.focal,
            "principal_point_px": list(self.principal_point),
            "pitch_deg": math.degrees(self.pitch),
            "roll_deg": math.degrees(self.roll),
            "camera_height_m": self.camera_height,
            "person_height_m": self.person_height,
            "cue": self.cue,
            "median_head_error_person_heights": self.residual,
            "focal_uncertainty": self.focal_uncertainty,
            "observations": self.observations,
        }


def camera_rotation(pitch: float, roll: float) -> np.ndarray:
    """Camera frame → ground frame for a camera tilted down by `pitch` and rolled by `roll` about its optical axis."""
    cos_p, sin_p = math.cos(pitch), math.sin(pitch)
    cos_r, sin_r = math.cos(roll), math.sin(roll)
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, cos_p, sin_p], [0.0, -sin_p, cos_p]])  # forward turns downwards
    spin = np.array([[cos_r, -sin_r, 0.0], [sin_r, cos_r, 0.0], [0.0, 0.0, 1.0]])
    return tilt @ LEVEL_CAMERA @ spin


def box_feet_and_heads(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bottom-centre (feet) and top-centre (head) pixels N×2 of N×4 xyxy boxes."""
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    return np.stack([centre_x, boxes[:, 3]], axis=1), np.stack([centre_x, boxes[:, 1]], axis=1)


def matched_rows(record: dict) -> np.ndarray:
    """Rows of a results record whose track was matched to a detection in that frame (bool mask): those with a body
    (finite cam_t) in runs with bodies, else those not lost; rows flagged `interpolated` are never matched."""
    if "cam_t" in record:
        matched = np.isfinite(np.asarray(record["cam_t"], dtype=np.float64)).all(axis=1)
    else:
        matched = np.asarray(record["states"]) != "lost"
    if "interpolated" in record:
        matched &= ~np.asarray(record["interpolated"], dtype=bool)
    return matched


def estimate_ground(
    results: Results, person_height: float = PERSON_HEIGHT, cue: UprightCue | None = None
) -> GroundPlane:
    """The camera and ground plane that best explain a run's posed, whole people as upright, `person_height` tall
    and standing on one plane, seen through `cue` (default: BlazePose landmarks when the run has them, else the
    bodies' 2D joints)."""
    keys = set(results.header["per_box_keys"])
    cue = cue or (LANDMARK_CUE if LANDMARK_CUE.key in keys else JOINT_CUE)
    if cue.key not in keys:
        raise InputError(f"Results {results.path} hold no bodies: the ground plane needs a run with pose estimates.")
    size = (float(results.header["width"]), float(results.header["height"]))
    feet, heads = [], []
    for record in results.frames():
        rows = _calibration_rows(record, cue, size)
        points = np.asarray(record[cue.key], dtype=np.float64)[rows]
        feet.append(points[:, list(cue.feet)].mean(axis=1))
        heads.append(points[:, list(cue.head)].mean(axis=1))
    feet_points = np.concatenate(feet) if feet else np.zeros((0, 2))
    head_points = np.concatenate(heads) if heads else np.zeros((0, 2))
    if len(feet_points) < MIN_OBSERVATIONS:
        raise InputError(
            f"Results {results.path} have {len(feet_points)} whole, posed people; the ground plane needs at least "
            f"{MIN_OBSERVATIONS} (a run with pose estimates: regressor=blazepose or hmr2)."
        )
    if len(feet_points) > MAX_OBSERVATIONS:
        keep = np.linspace(0, len(feet_points) - 1, MAX_OBSERVATIONS).round().astype(int)
        feet_points, head_points = feet_points[keep], head_points[keep]
    plane = calibrate(feet_points, head_points, cue, size, person_height)
    if not plane.focal_uncertainty <= MAX_FOCAL_UNCERTAINTY:
        raise InputError(
            f"The {len(feet_points)} posed people of {results.path} do not pin the camera down (focal length "
            f"{plane.focal:.0f} px ± {100 * plane.focal_uncertainty:.0f}%): the ground plane needs more frames or "
            "people."
        )
    return plane


def calibrate(
    feet: np.ndarray,
    heads: np.ndarray,
    cue: UprightCue,
    image_size: tuple[float, float],
    person_height: float = PERSON_HEIGHT,
) -> GroundPlane:
    """Fit focal length, pitch, roll and camera height to N upright people of `person_height` on z = 0 seen at the
    N×2 `feet` and `heads` pixels of `cue` in an image of `image_size` (width, height; principal point at its
    centre), with a weak prior on the focal length. Several starts; the lowest robust cost wins. The focal length's
    standard error comes from the data's Jacobian at the solution and the residuals' robust spread."""
    scale = person_height / PERSON_HEIGHT
    foot_height, head_height = cue.foot_height * scale, cue.head_height * scale
    centre = (image_size[0] / 2, image_size[1] / 2)
    pixel_heights = np.maximum(np.abs(heads[:, 1] - feet[:, 1]), 1.0)

    def residuals(params: np.ndarray) -> np.ndarray:
        log_focal, pitch, roll, log_height = params
        focal, camera_height = math.exp(log_focal), math.exp(log_height)
        rotation = camera_rotation(pitch, roll)
        standing = _plane_points(feet, focal, centre, rotation, camera_height - foot_height)
        head = standing + np.array([0.0, 0.0, head_height - foot_height])
        camera = (head - np.array([0.0, 0.0, camera_height - foot_height])) @ rotation
        depth = np.where(camera[:, 2] > 1e-6, camera[:, 2], 1e-6)
        projected = focal * camera[:, :2] / depth[:, None] + np.asarray(centre)
        error = (projected - heads) / pixel_heights[:, None]
        return np.nan_to_num(error, nan=10.0, posinf=10.0, neginf=-10.0).ravel()

    longer = max(image_size)
    prior = math.log(FOCAL_PRIOR * longer)

    def with_prior(params: np.ndarray) -> np.ndarray:
        return np.append(residuals(params), FOCAL_PRIOR_WEIGHT * (params[0] - prior) / math.log(2.0))

    best = None
    for focal_factor, pitch_deg in itertools.product((0.6, 1.0, 1.6, 2.5), (10.0, 25.0, 40.0, 60.0)):
        start = np.array([math.log(focal_factor * longer), math.radians(pitch_deg), 0.0, math.log(5.0)])
        fit = least_squares(with_prior, start, loss="soft_l1", f_scale=0.05, x_scale=[1.0, 0.2, 0.1, 1.0])
        if best is None or fit.cost < best.cost:
            best = fit
    log_focal, pitch, roll, log_height = best.x
    fitted = residuals(best.x)
    spread = (np.median(np.abs(fitted)) / 0.6745) ** 2  # the residuals' variance, robustly
    steps = np.eye(4) * 1e-5
    jacobian = np.stack([(residuals(best.x + step) - residuals(best.x - step)) / 2e-5 for step in steps], axis=1)
    covariance = np.linalg.pinv(jacobian.T @ jacobian) * spread
    errors = np.hypot(*fitted.reshape(-1, 2).T)
    return GroundPlane(
        focal=math.exp(log_focal),
        principal_point=centre,
        pitch=float(pitch),
        roll=float(roll),
        camera_height=math.exp(log_height),
        person_height=person_height,
        cue=cue.key,
        residual=float(np.median(errors)),
        focal_uncertainty=float(math.sqrt(max(covariance[0, 0], 0.0))),
        observations=len(feet),
    )


def _calibration_rows(record: dict, cue: UprightCue, image_size: tuple[float, float]) -> np.ndarray:
    """Rows of a record that may calibrate: matched, posed, whole (box clear of the image border), and for
    landmarks, likely visible."""
    rows = matched_rows(record) & np.asarray(record.get("has_pose", np.zeros(len(record["track_ids"]))), dtype=bool)
    boxes = np.asarray(record["boxes"], dtype=np.float64)
    width, height = image_size
    rows &= (boxes[:, 0] > BORDER) & (boxes[:, 1] > BORDER)
    rows &= (boxes[:, 2] < width - BORDER) & (boxes[:, 3] < height - BORDER)
    if cue is LANDMARK_CUE and "landmark_visibility" in record:
        visibility = np.nan_to_num(np.asarray(record["landmark_visibility"], dtype=np.float64))
        rows &= visibility[:, list(cue.feet + cue.head)].mean(axis=1) >= MIN_VISIBILITY
    points = np.asarray(record[cue.key], dtype=np.float64)
    return rows & np.isfinite(points.reshape(len(points), -1)).all(axis=1)


def _plane_points(
    pixels: np.ndarray, focal: float, centre: tuple[float, float], rotation: np.ndarray, camera_height: float
) -> np.ndarray:
    """N×3 points where the viewing rays of N×2 pixels meet the plane `camera_height` below the camera (the plane
    taken as z = 0); NaN where a ray does not go down."""
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    rays = np.concatenate([(pixels - np.asarray(centre)) / focal, np.ones((len(pixels), 1))], axis=1) @ rotation.T
    down = rays[:, 2] < -1e-9
    scale = np.where(down, camera_height / np.where(down, -rays[:, 2], 1.0), np.nan)
    return np.array([0.0, 0.0, camera_height]) + scale[:, None] * rays
