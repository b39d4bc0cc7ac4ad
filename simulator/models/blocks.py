"""Building blocks shared by the ImageNet architectures, with torchvision's layer structure and module names
(so that a torchvision ``state_dict`` loads into them unchanged)."""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of `divisor`, never below 90% of `value` (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvNormActivation(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d + optional activation: torchvision's ``Conv2dNormActivation``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU, dilation: int = 1):
        padding = (kernel_size - 1) // 2 * dilation
        layers = [nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation=dilation, groups=groups,
                            bias=False), norm_layer(c_out)]
        if activation_layer is not None:
            layers.append(activation_layer(inplace=True))
        super().__init__(*layers)
        self.out_channels = c_out


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool, two 1x1 convolutions, a gate that scales the input."""

    def __init__(self, channels: int, squeeze_channels: int, activation=nn.ReLU, scale_activation=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class StochasticDepth(nn.Module):
    """Drops whole residual branches per sample with probability `p` while training; identity in eval mode."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask.div_(keep)
