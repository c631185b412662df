"""Chooses the detector for a video: its public detections when it has them, else the network detector."""
from __future__ import annotations

from typing import Any

from hydra.utils import instantiate

from models.detection.base import Detector
from models.detection.mot_file import find_det_file
from tracker.errors import InputError


def detector_for_video(video: str, public: Any, network: Any | None) -> Detector:
    """Public detections (`public` config) if `video` is a MOT folder with det/det.txt, else `network`."""
    if find_det_file(video) is not None and not str(video).endswith(".txt"):
        return instantiate(public)
    if network is None:
        raise InputError(
            f"{video} has no det/det.txt and no network detector is configured: choose one with detector=..."
        )
    return instantiate(network)
