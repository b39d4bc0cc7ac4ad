"""MobileNetV3-Large with torchvision's layer structure (``torchvision.models.mobilenet_v3_large``):
5,483,032 parameters."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from simulator.models.blocks import ConvNormActivation, SqueezeExcitation, make_divisible

#: Inverted-residual blocks: (c_in, kernel, c_expanded, c_out, squeeze-excitation, activation, stride).
LARGE_BLOCKS = (
    (16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2), (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2), (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1), (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1), (160, 5, 960, 160, True, "HS", 1),
)
LARGE_LAST_CHANNEL = 1280


class InvertedResidual(nn.Module):
    """1x1 expand (when widened), depthwise conv, optional squeeze-excitation, 1x1 project, residual if shapes match."""

    def __init__(self, c_in, kernel, c_expanded, c_out, use_se, activation, stride, norm_layer):
        super().__init__()
        self.use_res_connect = stride == 1 and c_in == c_out
        act = nn.Hardswish if activation == "HS" else nn.ReLU
        layers = []
        if c_expanded != c_in:
            layers.append(ConvNormActivation(c_in, c_expanded, 1, norm_layer=norm_layer, activation_layer=act))
        layers.append(ConvNormActivation(c_expanded, c_expanded, kernel, stride, groups=c_expanded,
                                         norm_layer=norm_layer, activation_layer=act))
        if use_se:
            layers.append(SqueezeExcitation(c_expanded, make_divisible(c_expanded // 4, 8),
                                            scale_activation=nn.Hardsigmoid))
        layers.append(ConvNormActivation(c_expanded, c_out, 1, norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out += x
        return out


class MobileNetV3(nn.Module):
    """Stem (3x3 conv, hardswish), inverted-residual blocks, 1x1 conv to 6x channels, pool, two linear layers."""

    def __init__(self, blocks=LARGE_BLOCKS, last_channel: int = LARGE_LAST_CHANNEL, n_classes: int = 1000,
                 dropout: float = 0.2):
        super().__init__()
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        layers = [ConvNormActivation(3, blocks[0][0], 3, 2, norm_layer=norm_layer, activation_layer=nn.Hardswish)]
        layers += [InvertedResidual(*spec, norm_layer=norm_layer) for spec in blocks]
        c_last = 6 * blocks[-1][3]
        layers.append(ConvNormActivation(blocks[-1][3], c_last, 1, norm_layer=norm_layer,
                                         activation_layer=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(c_last, last_channel), nn.Hardswish(inplace=True), nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
