"""Body regressors side by side behind one interface: person crops of a window → SMPL parameters and cameras.

`template` (no weights, no pose estimate), `hmr2` (HMR2.0 ViT-H, 4D-Humans checkpoint) and `blazepose` (BlazePose
landmarks fitted to the body model). Import a regressor from its module: each loads only what it needs.
"""

from models.regressors.base import Regressor
from models.regressors.template import TemplateRegressor, template_pose

__all__ = ["Regressor", "TemplateRegressor", "template_pose"]
