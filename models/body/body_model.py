"""A thin layer over `smplx`: loads an SMPL or SMPL-X file (or the open default) and poses it in SMPL's convention.

SMPL-format models are posed here (linear blend skinning on smplx's buffers) rather than by smplx's `lbs`, which
multiplies a 4×4 matrix per vertex and always applies pose correctives: this skips correctives that are all zero
(the open model's) and is 2-3× cheaper. SMPL-X models go through smplx.

Inputs follow SMPL: a global orientation and 23 body joint rotations (rotation matrices, as the HMR2 head predicts,
or axis-angle), shape coefficients `betas`, and an optional translation. Outputs are vertices and the 24 SMPL
joints. Vertex and face counts always come from the loaded file.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes
from smplx.utils import Struct

from models.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from models.body.model_file import load_model_arrays
from models.body.skeleton import Skeleton
from models.structures import InputError

SMPL_BODY_JOINTS = len(SMPL_JOINT_NAMES) - 1  # 23 joints below the root
SMPLX_JOINT_COUNT = 55
SMPLX_BODY_JOINTS = 21  # SMPL's first 21 body joints; SMPL-X has finger joints instead of SMPL's 2 hand joints
SMPLX_MIDDLE_FINGER_BASES = (28, 43)  # left_middle1, right_middle1: stand in for SMPL's left_hand, right_hand
REQUIRED_KEYS = ("v_template", "f", "J_regressor", "kintree_table", "weights", "shapedirs", "posedirs")


def default_body_model_path() -> Path:
    """The open SMPL-format body model shipped with phalanx (see models/body/data/PROVENANCE.md)."""
    return Path(__file__).resolve().parent / "data" / "open_body.pkl"


@dataclass(frozen=True)
class UVMap:
    """Texture coordinates: `vt` (T×2 in [0, 1], OBJ convention: v grows upwards) and `ft` (F×3 indices into `vt`,
    one row per mesh face, so a vertex on a UV seam has one coordinate per face)."""

    vt: torch.Tensor
    ft: torch.Tensor


@dataclass(frozen=True)
class BodyOutput:
    """A posed batch: `vertices` B×V×3 and the 24 SMPL `joints` B×24×3, in metres, in the model's frame
    shifted by `transl`."""

    vertices: torch.Tensor
    joints: torch.Tensor


class _RegressedJointsOnly(torch.nn.Module):
    """Replaces smplx's extra joints picked at SMPL vertex ids (meaningless on other meshes): joints pass through."""

    def forward(self, vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        return joints


class BodyModel(torch.nn.Module):
    """An SMPL-convention body model: `forward` poses it; `faces`, `uv` and counts describe its mesh."""

    def __init__(self, layer: smplx.SMPLLayer, uv: UVMap | None, is_smplx: bool) -> None:
        super().__init__()
        layer.vertex_joint_selector = _RegressedJointsOnly()
        self.layer = layer
        self.is_smplx = is_smplx
        self.joint_names: tuple[str, ...] = SMPL_JOINT_NAMES
        self.parents: tuple[int, ...] = SMPL_PARENTS
        self.has_uv = uv is not None
        if uv is not None:
            self.register_buffer("uv_vt", uv.vt)
            self.register_buffer("uv_ft", uv.ft)
        rows = list(range(SMPLX_BODY_JOINTS + 1)) + (list(SMPLX_MIDDLE_FINGER_BASES) if is_smplx else [22, 23])
        self.skeleton = Skeleton(
            layer.J_regressor[rows], layer.v_template, layer.shapedirs[..., : layer.num_betas], SMPL_PARENTS
        )
        if not is_smplx:
            self.has_pose_correctives = bool(layer.posedirs.abs().max() > 0)

    @property
    def faces(self) -> torch.Tensor:
        """Mesh faces, F×3 int64 vertex indices."""
        return self.layer.faces_tensor

    @property
    def num_vertices(self) -> int:
        return int(self.layer.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.layer.faces_tensor.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.layer.num_betas)

    @property
    def uv(self) -> UVMap | None:
        """Texture coordinates of the mesh, or None when the file has none (official SMPL files)."""
        return UVMap(vt=self.uv_vt, ft=self.uv_ft) if self.has_uv else None

    def forward(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        betas: torch.Tensor,
        transl: torch.Tensor | None = None,
        pose2rot: bool = False,
    ) -> BodyOutput:
        """Poses a batch. Rotation matrices (pose2rot=False): global_orient B×1×3×3 (or B×3×3), body_pose B×23×3×3.
        Axis-angle (pose2rot=True): global_orient B×3, body_pose B×69 (or B×23×3). betas B×K with K <= num_betas
        (missing coefficients are zero); transl B×3."""
        batch = betas.shape[0]
        global_orient = _rotation_matrices(global_orient, batch, 1, pose2rot)
        body_pose = _rotation_matrices(body_pose, batch, SMPL_BODY_JOINTS, pose2rot)
        betas = _pad_betas(betas, self.num_betas)
        if self.is_smplx:
            output = self.layer(
                betas=betas,
                global_orient=global_orient,
                body_pose=body_pose[:, :SMPLX_BODY_JOINTS],
                transl=transl,
                expression=betas.new_zeros(batch, self.layer.num_expression_coeffs),
            )
            joints = torch.cat(
                [output.joints[:, : SMPLX_BODY_JOINTS + 1], output.joints[:, list(SMPLX_MIDDLE_FINGER_BASES)]], dim=1
            )
            return BodyOutput(vertices=output.vertices, joints=joints)
        return self._skin(torch.cat([global_orient, body_pose], dim=1), betas, transl)

    def _skin(self, rotations: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor | None) -> BodyOutput:
        """SMPL linear blend skinning of B×24×3×3 joint rotations: shape blend, pose correctives (when the model
        has any), kinematic chain, then each vertex moved by its weighted blend of the joint transforms."""
        layer = self.layer
        batch = betas.shape[0]
        shaped = layer.v_template + blend_shapes(betas, layer.shapedirs)
        if self.has_pose_correctives:
            identity = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
            pose_feature = (rotations[:, 1:] - identity).reshape(batch, -1)
            shaped = shaped + (pose_feature @ layer.posedirs).reshape(batch, -1, 3)
        joints, transforms = self._kinematic_chain(rotations, betas)
        blended = (layer.lbs_weights @ transforms.reshape(batch, -1, 16)).reshape(batch, -1, 4, 4)
        vertices = (blended[..., :3, :3] * shaped[:, :, None, :]).sum(dim=-1) + blended[..., :3, 3]
        if transl is not None:
            vertices, joints = vertices + transl[:, None, :], joints + transl[:, None, :]
        return BodyOutput(vertices=vertices, joints=joints)

    def joints(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        betas: torch.Tensor,
        transl: torch.Tensor | None = None,
        pose2rot: bool = False,
    ) -> torch.Tensor:
        """The 24 posed joints B×24×3, as `forward(...).joints`, without skinning the mesh (a tiny fraction of the
        cost: joints depend on shape and pose only through the joint regressor and the kinematic chain)."""
        batch = betas.shape[0]
        rotations = torch.cat(
            [
                _rotation_matrices(global_orient, batch, 1, pose2rot),
                _rotation_matrices(body_pose, batch, SMPL_BODY_JOINTS, pose2rot),
            ],
            dim=1,
        )
        posed = self.skeleton(rotations, _pad_betas(betas, self.num_betas))
        return posed if transl is None else posed + transl[:, None, :]

    def _kinematic_chain(self, rotations: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed joints B×24×3 and joint transforms B×24×4×4 (rest joints follow the shape directions)."""
        rest = self.skeleton.rest_joints(betas)
        return batch_rigid_transform(rotations, rest, self.layer.parents, dtype=rest.dtype)


def _rotation_matrices(pose: torch.Tensor, batch: int, joints: int, pose2rot: bool) -> torch.Tensor:
    """B×joints×3×3 rotation matrices from rotation matrices or axis-angle vectors."""
    if pose2rot:
        if pose.numel() != batch * joints * 3:
            raise ValueError(f"expected {batch}×{joints}×3 axis-angle values, got shape {tuple(pose.shape)}")
        return batch_rodrigues(pose.reshape(-1, 3)).reshape(batch, joints, 3, 3)
    if pose.numel() != batch * joints * 9:
        raise ValueError(f"expected {batch}×{joints}×3×3 rotation matrices, got shape {tuple(pose.shape)}")
    return pose.reshape(batch, joints, 3, 3)


def _pad_betas(betas: torch.Tensor, num_betas: int) -> torch.Tensor:
    if betas.shape[1] > num_betas:
        raise ValueError(f"the body model has {num_betas} shape coefficients, got {betas.shape[1]}")
    return torch.nn.functional.pad(betas, (0, num_betas - betas.shape[1]))


def _resolve(path: Path, gender: str) -> Path:
    """A model file: the path itself, or in a folder SMPL_<GENDER>.pkl / SMPLX_<GENDER>.npz / .pkl, as smplx names
    them."""
    if path.is_dir():
        for name in (f"SMPL_{gender.upper()}.pkl", f"SMPLX_{gender.upper()}.npz", f"SMPLX_{gender.upper()}.pkl"):
            if (path / name).is_file():
                return path / name
        raise InputError(f"Body model folder {path} holds no SMPL_{gender.upper()}.pkl or SMPLX_{gender.upper()}.npz.")
    if not path.is_file():
        raise InputError(f"Body model file {path} does not exist; expected an SMPL or SMPL-X .pkl or .npz file.")
    return path


def _uv_map(arrays: dict, num_faces: int, path: Path) -> UVMap | None:
    if "vt" not in arrays or "ft" not in arrays:
        return None
    vt = torch.tensor(np.asarray(arrays["vt"], dtype=np.float32))
    ft = torch.tensor(np.asarray(arrays["ft"], dtype=np.int64))
    if vt.ndim != 2 or vt.shape[1] != 2 or ft.shape != (num_faces, 3):
        raise InputError(f"Body model file {path}: 'vt' must be T×2 and 'ft' F×3 with one row per face.")
    return UVMap(vt=vt, ft=ft)


def _smplx_layer(arrays: dict, num_betas: int) -> smplx.SMPLXLayer:
    """smplx.SMPLX reads its file itself: it is handed a copy holding only the numeric arrays the safe loader read."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "SMPLX_NEUTRAL.npz"
        np.savez(copy, **{k: v.toarray() if hasattr(v, "toarray") else np.asarray(v) for k, v in arrays.items()})
        return smplx.SMPLXLayer(model_path=str(copy), ext="npz", num_betas=num_betas, use_pca=False)


def load_body_model(
    path: str | Path | None = None, gender: str = "neutral", device: str | torch.device = "cpu", num_betas: int = 10
) -> BodyModel:
    """Loads an SMPL (24 joints) or SMPL-X (55 joints) model file, or the open default when `path` is None."""
    model_path = _resolve(Path(path) if path is not None else default_body_model_path(), gender)
    arrays = load_model_arrays(model_path)
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise InputError(f"Body model file {model_path} lacks the key(s) {', '.join(missing)} of an SMPL model.")
    joint_count = np.asarray(arrays["kintree_table"]).shape[1]
    if joint_count not in (len(SMPL_JOINT_NAMES), SMPLX_JOINT_COUNT):
        raise InputError(f"Body model file {model_path} has {joint_count} joints; expected SMPL (24) or SMPL-X (55).")
    is_smplx = joint_count == SMPLX_JOINT_COUNT
    # smplx prints a warning when a model has fewer than 300 shape directions, as official SMPL files do.
    with contextlib.redirect_stdout(io.StringIO()):
        if is_smplx:
            layer = _smplx_layer(arrays, num_betas)
        else:
            layer = smplx.SMPLLayer(model_path=str(model_path), data_struct=Struct(**arrays), num_betas=num_betas)
    model = BodyModel(layer, _uv_map(arrays, int(layer.faces_tensor.shape[0]), model_path), is_smplx)
    return model.to(device).eval()
