"""BlazePose-full (GHUM landmark model of MediaPipe Pose) in torch: the encoder and the regression head.

Laid out as the released `pose_landmark_full.tflite` computes it: MobileNetV2-like inverted residual stages down to
8×8, then a BlazeBlock tail down to 2×2 and three 2×2 "valid" convolutions giving 39 landmarks (x, y, z, visibility,
presence logits, in input pixels), 39 world landmarks (metres) and the pose-presence logit; on request, the file's
person segmentation decoder (a small U-Net over five encoder maps) gives the person mask of the crop. The heatmap
decoder feeds none of these outputs and is left out. Batch norms are already folded into the file's convolution
biases. Padding reproduces TensorFlow's: explicit symmetric pads before the stride-2
encoder convolutions, and "SAME" (asymmetric at stride 2) in the tail; all are fixed by the 256×256 input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.tf_padding import same_padding

INPUT_SIZE = 256
NUM_OUTPUT_LANDMARKS = 39  # 33 pose landmarks + 6 auxiliary ones MediaPipe uses to place the next ROI
# Encoder inverted residual stages after the stem: (in, expanded, out channels, depthwise kernel, stride).
ENCODER_STAGES = (
    (16, 64, 24, 3, 2),
    (24, 144, 24, 3, 1),
    (24, 144, 32, 5, 2),
    (32, 192, 32, 5, 1),
    (32, 192, 64, 3, 2),
    (64, 384, 64, 3, 1),
    (64, 384, 64, 3, 1),
    (64, 384, 88, 5, 1),
    (88, 528, 88, 5, 1),
    (88, 528, 88, 5, 1),
    (88, 528, 144, 5, 2),
    (144, 864, 144, 5, 1),
    (144, 864, 144, 5, 1),
    (144, 864, 144, 5, 1),
)
TAIL_CHANNELS = 288
TAIL_RESIDUAL_BLOCKS = (4, 5)  # BlazeBlocks after each of the two stride-2 blocks (at 4×4, then 2×2)
# Segmentation decoder: the encoder stages whose outputs it reads besides the stem (64², 32² and 16² maps), its
# channels at the coarse levels and at the two finest (128², 256²), and its residual blocks per fine level.
SEGMENTATION_SKIP_STAGES = (1, 3, 9)
SEGMENTATION_CHANNELS = 48
SEGMENTATION_FINE_CHANNELS = 8
SEGMENTATION_FINE_BLOCKS = 2


class Conv(nn.Module):
    """A convolution with bias (regular or depthwise), fixed padding (left, right, top, bottom) and optional ReLU6."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int = 1,
        stride: int = 1,
        padding: tuple[int, int, int, int] = (0, 0, 0, 0),
        depthwise: bool = False,
        relu6: bool = False,
    ) -> None:
        super().__init__()
        groups = in_channels if depthwise else 1
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, groups=groups, bias=True)
        self.padding = padding
        self.depthwise = depthwise
        self.relu6 = relu6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = self.padding
        if left == right and top == bottom:
            weight, bias, conv = self.conv.weight, self.conv.bias, self.conv
            x = F.conv2d(x, weight, bias, conv.stride, (top, left), groups=conv.groups)
        else:
            x = self.conv(F.pad(x, self.padding))
        return x.clamp_(0.0, 6.0) if self.relu6 else x


def _symmetric(pad: int) -> tuple[int, int, int, int]:
    return (pad, pad, pad, pad)


def _tf_same(size: int, kernel: int, stride: int) -> tuple[int, int, int, int]:
    before, after = same_padding(size, kernel, stride)
    return (before, after, before, after)


class InvertedResidual(nn.Module):
    """1×1 expansion (ReLU6), k×k depthwise (ReLU6), 1×1 linear projection; a residual sum when shapes allow.

    Stride-2 blocks pad symmetrically by k//2 before a 'valid' depthwise convolution, as the file does."""

    def __init__(self, in_channels: int, expanded: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.expand = Conv(in_channels, expanded, relu6=True)
        self.depthwise = Conv(expanded, expanded, kernel, stride, _symmetric(kernel // 2), depthwise=True, relu6=True)
        self.project = Conv(expanded, out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class BlazeBlock(nn.Module):
    """3×3 depthwise (ReLU6) then 1×1 linear, added to the input (max-pooled when the block halves the map); ReLU6."""

    def __init__(self, channels: int, stride: int, size: int) -> None:
        super().__init__()
        self.depthwise = Conv(channels, channels, 3, stride, _tf_same(size, 3, stride), depthwise=True, relu6=True)
        self.pointwise = Conv(channels, channels)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = F.max_pool2d(x, 2, 2) if self.stride == 2 else x
        return (shortcut + self.pointwise(self.depthwise(x))).clamp_(0.0, 6.0)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2× upsampling with half-pixel centres, as the file's RESIZE_BILINEAR ops."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _depthwise_pointwise(in_channels: int, out_channels: int, relu6_out: bool) -> nn.Sequential:
    return nn.Sequential(
        Conv(in_channels, in_channels, 3, 1, _symmetric(1), depthwise=True, relu6=True),
        Conv(in_channels, out_channels, relu6=relu6_out),
    )


class SegmentationDecoder(nn.Module):
    """The file's person segmentation (output `Identity_2`, logits of the crop's centred person): each encoder map
    (stem 128², stages at 64², 32², 16², final 8²) goes through a 3×3 depthwise + 1×1 branch; coarse to fine, each
    level is upsampled and added to the next branch; at 128² and at 256² two residual blocks refine 8 channels; a
    3×3 convolution gives one logit per pixel. Modules are declared in the file's execution order."""

    def __init__(self, skip_channels: tuple[int, ...], final_channels: int) -> None:
        super().__init__()
        fine, coarse = SEGMENTATION_FINE_CHANNELS, SEGMENTATION_CHANNELS
        self.branches = nn.ModuleList(
            [_depthwise_pointwise(skip_channels[0], fine, True)]
            + [_depthwise_pointwise(channels, coarse, True) for channels in (*skip_channels[1:], final_channels)]
        )
        self.to_fine = _depthwise_pointwise(coarse, fine, True)
        blocks = 2 * SEGMENTATION_FINE_BLOCKS
        self.refine = nn.ModuleList(_depthwise_pointwise(fine, fine, False) for _ in range(blocks))
        self.head = Conv(fine, 1, 3, 1, _symmetric(1))

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Logits B×1×(2·S)×(2·S) from the encoder maps, finest (S×S) first."""
        stem, *coarse = [branch(x) for branch, x in zip(self.branches, maps)]
        x = coarse[-1]
        for skip in reversed(coarse[:-1]):
            x = _upsample(x) + skip
        x = _upsample(self.to_fine(x)) + stem
        for index, block in enumerate(self.refine):
            if index == SEGMENTATION_FINE_BLOCKS:
                x = _upsample(x)
            x = (x + block(x)).clamp_(0.0, 6.0)
        return self.head(x)


@dataclass
class LandmarkOutputs:
    """Raw outputs for B crops: landmarks B×39×5 (x, y, z in input pixels; visibility and presence logits),
    world B×39×3 (metres, origin between the hips), pose_flag B (probability that a person is in the crop) and,
    when asked for, mask_logits B×256×256 (the centred person's segmentation, logits)."""

    landmarks: torch.Tensor
    world: torch.Tensor
    pose_flag: torch.Tensor
    mask_logits: torch.Tensor | None = None


class BlazePoseFull(nn.Module):
    """The BlazePose-full landmark network: B×3×256×256 RGB in [0, 1] → LandmarkOutputs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Conv(3, 24, 3, 2, _symmetric(1), relu6=True)
        self.stem_depthwise = Conv(24, 24, 3, 1, _symmetric(1), depthwise=True, relu6=True)
        self.stem_project = Conv(24, 16)
        self.stages = nn.Sequential(*(InvertedResidual(*stage) for stage in ENCODER_STAGES))
        last = ENCODER_STAGES[-1][2]
        self.final_expand = Conv(last, 864, relu6=True)
        self.final_depthwise = Conv(864, 864, 3, 1, _symmetric(1), depthwise=True, relu6=True)
        self.tail_depthwise = Conv(864, 864, 3, 1, _symmetric(1), depthwise=True, relu6=True)
        self.tail_pointwise = Conv(864, TAIL_CHANNELS, relu6=True)
        size = INPUT_SIZE // 32
        blocks = []
        for repeats in TAIL_RESIDUAL_BLOCKS:
            blocks.append(BlazeBlock(TAIL_CHANNELS, 2, size))
            size //= 2
            blocks.extend(BlazeBlock(TAIL_CHANNELS, 1, size) for _ in range(repeats))
        self.tail = nn.Sequential(*blocks)
        self.landmark_head = Conv(TAIL_CHANNELS, NUM_OUTPUT_LANDMARKS * 5, 2)
        self.world_head = Conv(TAIL_CHANNELS, NUM_OUTPUT_LANDMARKS * 3, 2)
        self.flag_head = Conv(TAIL_CHANNELS, 1, 2)
        skip_channels = (16, *(ENCODER_STAGES[index][2] for index in SEGMENTATION_SKIP_STAGES))
        self.segmentation = SegmentationDecoder(skip_channels, 864)

    def conv_layers(self) -> list[Conv]:
        """The landmark path's convolutions in execution order (the order the weight loader maps the file's to)."""
        segmentation = set(self.segmentation.modules())
        return [m for m in self.modules() if isinstance(m, Conv) and m not in segmentation]

    def forward(self, images: torch.Tensor, segment: bool = False) -> LandmarkOutputs:
        """Landmarks of B crops (B×3×256×256 RGB in [0, 1]); `segment` also runs the segmentation decoder."""
        x = self.stem_project(self.stem_depthwise(self.stem(images)))
        maps = [x]
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in SEGMENTATION_SKIP_STAGES:
                maps.append(x)
        x = self.final_depthwise(self.final_expand(x))
        mask_logits = self.segmentation([*maps, x])[:, 0] if segment else None
        x = self.tail(self.tail_pointwise(self.tail_depthwise(x)))
        batch = images.shape[0]
        return LandmarkOutputs(
            landmarks=self.landmark_head(x).reshape(batch, NUM_OUTPUT_LANDMARKS, 5),
            world=self.world_head(x).reshape(batch, NUM_OUTPUT_LANDMARKS, 3),
            pose_flag=torch.sigmoid(self.flag_head(x).reshape(batch)),
            mask_logits=mask_logits,
        )
