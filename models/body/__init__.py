"""Parametric body models (SMPL, SMPL-X, and the open SMPL-format default) behind one small API."""

from models.body.body_model import BodyModel, BodyOutput, UVMap, default_body_model_path, load_body_model
from models.body.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from models.body.skeleton import Skeleton

__all__ = [
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "BodyModel",
    "BodyOutput",
    "Skeleton",
    "UVMap",
    "default_body_model_path",
    "load_body_model",
]
