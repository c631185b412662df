"""The ground floor: typed containers and errors that every stage of models/ and tracker/ shares.

Nothing here imports a stage, a file format library or tracker/: importing a detector or a regressor pulls in only
these types and torch.
"""

from models.structures.bodies import Bodies, BodyArrays
from models.structures.body_params import BodyParams
from models.structures.boxes import cxcywh_to_xyxy, iou_matrix, xywh_to_xyxy, xyxy_to_cxcywh, xyxy_to_xywh
from models.structures.crops import DEFAULT_CROP_SPEC, CropSpec, PersonBatch
from models.structures.detections import Detections, ScoreThresholds
from models.structures.errors import InputError
from models.structures.frame import Frame
from models.structures.landmarks import LANDMARK_NAMES, NUM_LANDMARKS, PoseLandmarks
from models.structures.observations import Observations, window_observations

__all__ = [
    "DEFAULT_CROP_SPEC",
    "LANDMARK_NAMES",
    "NUM_LANDMARKS",
    "Bodies",
    "BodyArrays",
    "BodyParams",
    "CropSpec",
    "Detections",
    "Frame",
    "InputError",
    "Observations",
    "PersonBatch",
    "PoseLandmarks",
    "ScoreThresholds",
    "cxcywh_to_xyxy",
    "iou_matrix",
    "window_observations",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_xywh",
]
