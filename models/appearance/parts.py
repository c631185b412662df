"""Body-part label of every UV texel, from the body model's skinning weights (the joint that moves each face most)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from models.body.body_model import SMPLX_BODY_JOINTS, BodyModel
from models.body.joints import SMPL_JOINT_NAMES
from models.structures import InputError
from models.texture.uv_map import uv_texel_map

# SMPL-X joints past its 22 body joints, folded onto the SMPL joint they hang from: jaw and eyes, 15 finger joints
# per hand.
_SMPLX_FOLD = (
    [SMPL_JOINT_NAMES.index("head")] * 3
    + [SMPL_JOINT_NAMES.index("left_hand")] * 15
    + [SMPL_JOINT_NAMES.index("right_hand")] * 15
)


def texel_part_labels(body_model: BodyModel, uv_size: int, parts: Mapping[str, Sequence[str]]) -> torch.Tensor:
    """S×S int64 labels of the UV texels: the position in `parts` (name -> SMPL joint names) of the part whose joints
    dominate the texel's face, -1 for texels outside every face or on faces of joints that no part lists."""
    uv = body_model.uv
    if uv is None:
        raise InputError("Body-part texels need a body model file with UV coordinates ('vt' and 'ft').")
    joint_part = torch.full((len(SMPL_JOINT_NAMES),), -1, dtype=torch.int64)
    for part, (name, joints) in enumerate(parts.items()):
        for joint in joints:
            if joint not in SMPL_JOINT_NAMES:
                raise InputError(f"Appearance part `{name}` lists `{joint}`, which is not an SMPL joint name.")
            if joint_part[SMPL_JOINT_NAMES.index(joint)] >= 0:
                raise InputError(f"Appearance part `{name}` lists `{joint}`, which an earlier part already has.")
            joint_part[SMPL_JOINT_NAMES.index(joint)] = part
    weights = _smpl_skinning_weights(body_model)
    faces = body_model.faces.detach().cpu().long()
    face_joint = weights[faces].sum(dim=1).argmax(dim=1)
    texels = uv_texel_map(uv.vt, uv.ft, uv_size)
    labels = joint_part[face_joint][texels.face_index.clamp(min=0)]
    return torch.where(texels.covered, labels, -1)


def _smpl_skinning_weights(body_model: BodyModel) -> torch.Tensor:
    """V×24 skinning weights over the SMPL joints (an SMPL-X model's extra joints folded onto SMPL's)."""
    weights = body_model.layer.lbs_weights.detach().cpu().float()
    if not body_model.is_smplx:
        return weights
    folded = torch.zeros(weights.shape[0], len(SMPL_JOINT_NAMES))
    folded[:, : SMPLX_BODY_JOINTS + 1] = weights[:, : SMPLX_BODY_JOINTS + 1]
    folded.index_add_(1, torch.tensor(_SMPLX_FOLD), weights[:, SMPLX_BODY_JOINTS + 1 :])
    return folded
