"""SSDLite-MobileNetV2 in torch, laid out exactly like the TensorFlow Object Detection API graph it is loaded from.

Every convolution knows its TensorFlow scope (`ConvBN.scope`, `PredictorConv.scope`), which is how the weight
loader maps the frozen graph's variables onto it. Padding follows TensorFlow's "SAME" rule, which pads stride-2
convolutions asymmetrically (more at the bottom/right) on even-sized inputs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.tf_padding import same_padding

BACKBONE_SCOPE = "FeatureExtractor/MobilenetV2"
# MobileNetV2 inverted residual stages: (expansion factor, output channels, repeats, first stride).
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1))
# SSDLite extra feature layers after Conv_1: (1x1 bottleneck channels, output channels), each halving the map.
EXTRA_LAYERS = ((256, 512), (128, 256), (128, 256), (64, 128))
BATCHNORM_EPSILON = 1e-3



class ConvBN(nn.Module):
    """Convolution (regular or depthwise, no bias) + batch norm + optional ReLU6, with TF 'SAME' padding.

    `fuse_batchnorm` folds the batch norm into the convolution (weight scale + bias) for inference speed.
    """

    def __init__(self, scope: str, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1,
                 depthwise: bool = False, relu6: bool = True) -> None:
        super().__init__()
        self.scope, self.depthwise, self.relu6, self.kernel, self.stride = scope, depthwise, relu6, kernel, stride
        groups = in_channels if depthwise else 1
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=0, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_channels, eps=BATCHNORM_EPSILON)

    def fuse_batchnorm(self) -> None:
        """Fold the (frozen) batch norm statistics into the convolution; the block then computes the same."""
        if not isinstance(self.bn, nn.BatchNorm2d):
            return
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        fused = nn.Conv2d(self.conv.in_channels, self.conv.out_channels, self.kernel, self.stride, padding=0,
                          groups=self.conv.groups, bias=True).to(self.conv.weight.device)
        with torch.no_grad():
            fused.weight.copy_(self.conv.weight * scale[:, None, None, None])
            fused.bias.copy_(self.bn.bias - self.bn.running_mean * scale)
        self.conv, self.bn = fused, nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[2], self.kernel, self.stride)
        left, right = same_padding(x.shape[3], self.kernel, self.stride)
        # Where TF pads one more row (column) after than before, a kernel with a leading zero row (column) and the
        # larger padding on both sides computes the same, without copying the input into a padded tensor (on a
        # 512×928 input that copy took longer than the convolutions it fed).
        weight = F.pad(self.conv.weight, (right - left, 0, bottom - top, 0))
        x = F.conv2d(x, weight, self.conv.bias, self.stride, (bottom, right), groups=self.conv.groups)
        x = self.bn(x)
        return F.relu6(x, inplace=True) if self.relu6 else x


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (absent when the factor is 1), 3x3 depthwise, linear 1x1 project, skip."""

    def __init__(self, scope: str, in_channels: int, out_channels: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvBN(f"{scope}/expand", in_channels, hidden) if expansion != 1 else None
        self.depthwise = ConvBN(f"{scope}/depthwise", hidden, hidden, 3, stride, depthwise=True)
        self.project = ConvBN(f"{scope}/project", hidden, out_channels, relu6=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor, return_expansion: bool = False):
        expanded = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(expanded))
        if self.residual:
            out = out + x
        return (out, expanded) if return_expansion else out


class PredictorConv(nn.Module):
    """SSDLite predictor branch: 3x3 depthwise conv + BN + ReLU6, then a 1x1 conv with bias."""

    def __init__(self, scope: str, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.scope = scope
        self.depthwise = ConvBN(f"{scope}_depthwise", in_channels, in_channels, 3, depthwise=True)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SSDLiteMobileNetV2(nn.Module):
    """Backbone, extra layers and box/class predictors; returns box encodings (B, A, 4) and logits (B, A, C).

    Anchors are ordered feature map by feature map, then row, column and anchor, like the TF graph.
    """

    def __init__(self, anchors_per_location: tuple[int, ...] = (3, 6, 6, 6, 6, 6), num_classes: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stem = ConvBN(f"{BACKBONE_SCOPE}/Conv", 3, 32, 3, 2)
        blocks, channels = [], 32
        for expansion, out_channels, repeats, first_stride in MOBILENET_V2_STAGES:
            for repeat in range(repeats):
                suffix = f"_{len(blocks)}" if blocks else ""
                blocks.append(InvertedResidual(f"{BACKBONE_SCOPE}/expanded_conv{suffix}", channels, out_channels,
                                               expansion, first_stride if repeat == 0 else 1))
                channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.head_block_index = 13  # its expansion output (stride 16) is the first feature map
        self.last_conv = ConvBN(f"{BACKBONE_SCOPE}/Conv_1", channels, 1280)
        extras, channels = [], 1280
        for index, (bottleneck, out_channels) in enumerate(EXTRA_LAYERS, start=2):
            prefix = f"{BACKBONE_SCOPE}/layer_19"
            extras.append(nn.Sequential(
                ConvBN(f"{prefix}_1_Conv2d_{index}_1x1_{bottleneck}", channels, bottleneck),
                ConvBN(f"{prefix}_2_Conv2d_{index}_3x3_s2_{out_channels}_depthwise", bottleneck, bottleneck, 3, 2,
                       depthwise=True),
                ConvBN(f"{prefix}_2_Conv2d_{index}_3x3_s2_{out_channels}", bottleneck, out_channels),
            ))
            channels = out_channels
        self.extras = nn.ModuleList(extras)
        feature_channels = (blocks[self.head_block_index].depthwise.conv.in_channels, 1280) + tuple(
            out for _, out in EXTRA_LAYERS)
        self.box_predictors = nn.ModuleList(
            PredictorConv(f"BoxPredictor_{i}/BoxEncodingPredictor", c, a * 4)
            for i, (c, a) in enumerate(zip(feature_channels, anchors_per_location)))
        self.class_predictors = nn.ModuleList(
            PredictorConv(f"BoxPredictor_{i}/ClassPredictor", c, a * num_classes)
            for i, (c, a) in enumerate(zip(feature_channels, anchors_per_location)))

    def fuse_batchnorm(self) -> "SSDLiteMobileNetV2":
        """Fold every batch norm into its convolution (inference only); returns self."""
        for module in self.modules():
            if isinstance(module, ConvBN):
                module.fuse_batchnorm()
        return self

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The six feature maps the predictors read, from stride 16 down to 1x1 (for a 300x300 input)."""
        x = self.stem(images)
        maps = []
        for index, block in enumerate(self.blocks):
            if index == self.head_block_index:
                x, expanded = block(x, return_expansion=True)
                maps.append(expanded)
            else:
                x = block(x)
        x = self.last_conv(x)
        maps.append(x)
        for extra in self.extras:
            x = extra(x)
            maps.append(x)
        return maps

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        """images (B, 3, H, W) scaled to [-1, 1] -> box encodings, class logits, feature map sizes."""
        maps = self.features(images)
        batch = images.shape[0]
        encodings = [p(m).permute(0, 2, 3, 1).reshape(batch, -1, 4) for p, m in zip(self.box_predictors, maps)]
        logits = [p(m).permute(0, 2, 3, 1).reshape(batch, -1, self.num_classes)
                  for p, m in zip(self.class_predictors, maps)]
        return torch.cat(encodings, 1), torch.cat(logits, 1), [(m.shape[2], m.shape[3]) for m in maps]
