"""Body regressors: HMR2.0 (ViT-H backbone + transformer SMPL head, 4D-Humans checkpoint) and a no-weights template."""

from models.hmr2.network import PRESETS, HMR2Network
from models.hmr2.regressor import HMR2Regressor, Regressor
from models.hmr2.template import TemplateRegressor, template_pose

__all__ = ["PRESETS", "HMR2Network", "HMR2Regressor", "Regressor", "TemplateRegressor", "template_pose"]
