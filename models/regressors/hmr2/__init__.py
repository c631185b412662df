"""HMR2.0 (4D-Humans): ViT-H backbone + transformer SMPL head, loading the released checkpoint."""

from models.regressors.hmr2.network import PRESETS, HMR2Network
from models.regressors.hmr2.regressor import HMR2Regressor

__all__ = ["PRESETS", "HMR2Network", "HMR2Regressor"]
