"""EfficientNet-B0 with torchvision's layer structure (``torchvision.models.efficientnet_b0``):
5,288,548 parameters."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from simulator.models.blocks import ConvNormActivation, SqueezeExcitation, StochasticDepth, make_divisible

#: MBConv stages of B0: (expand ratio, kernel, stride, c_in, c_out, blocks).
B0_STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))


class MBConv(nn.Module):
    """1x1 expand (SiLU), depthwise conv (SiLU), squeeze-excitation, 1x1 project; residual with stochastic depth."""

    def __init__(self, expand_ratio, kernel, stride, c_in, c_out, stochastic_depth_p, norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.use_res_connect = stride == 1 and c_in == c_out
        c_expanded = make_divisible(c_in * expand_ratio, 8)
        layers = []
        if c_expanded != c_in:
            layers.append(ConvNormActivation(c_in, c_expanded, 1, norm_layer=norm_layer, activation_layer=nn.SiLU))
        layers += [
            ConvNormActivation(c_expanded, c_expanded, kernel, stride, groups=c_expanded, norm_layer=norm_layer,
                               activation_layer=nn.SiLU),
            SqueezeExcitation(c_expanded, max(1, c_in // 4), activation=partial(nn.SiLU, inplace=True)),
            ConvNormActivation(c_expanded, c_out, 1, norm_layer=norm_layer, activation_layer=None),
        ]
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out)
            out += x
        return out


def _stage(spec, first_block: int, total_blocks: int, stochastic_depth_p: float) -> nn.Sequential:
    expand, kernel, stride, c_in, c_out, n_blocks = spec
    return nn.Sequential(*(
        MBConv(expand, kernel, stride if i == 0 else 1, c_in if i == 0 else c_out, c_out,
               stochastic_depth_p * (first_block + i) / total_blocks)
        for i in range(n_blocks)))


class EfficientNet(nn.Module):
    """Stem (3x3 conv, SiLU), MBConv stages, 1x1 conv to 4x channels, pool, dropout, linear classifier."""

    def __init__(self, stages=B0_STAGES, n_classes: int = 1000, dropout: float = 0.2,
                 stochastic_depth_p: float = 0.2):
        super().__init__()
        total = sum(s[5] for s in stages)
        firsts = [sum(s[5] for s in stages[:i]) for i in range(len(stages))]
        layers = [ConvNormActivation(3, stages[0][3], 3, 2, activation_layer=nn.SiLU)]
        layers += [_stage(s, first, total, stochastic_depth_p) for s, first in zip(stages, firsts)]
        c_last = 4 * stages[-1][4]
        layers.append(ConvNormActivation(stages[-1][4], c_last, 1, activation_layer=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(c_last, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
