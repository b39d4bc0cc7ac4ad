"""An example of your own model for ``flexsim profile`` and ``flexsim costmodel trace`` (docs/your-models.md).

Copy it beside you as ``models.py`` and name it on the command line as ``mynet=models.py:build`` with
``--input-shape 3,32,32``: a CIFAR-style CNN of five 3x3 convolutions with batch norm and a linear head
(0.059 GFLOP per 32x32 image), returned untrained, as its cost does not depend on its weights.
"""

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """A 3x3 convolution, its batch norm and a ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def build(num_classes: int = 10) -> nn.Module:
    """The CNN: 32 -> 64 -> 64 -> 128 -> 128 channels (two stride-2 stages: 32x32 -> 16x16 -> 8x8), global average
    pooling and a linear classifier of `num_classes` outputs."""
    return nn.Sequential(conv_block(3, 32, 1), conv_block(32, 64, 2), conv_block(64, 64, 1),
                         conv_block(64, 128, 2), conv_block(128, 128, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))


if __name__ == "__main__":
    print(build()(torch.randn(2, 3, 32, 32)).shape)   # torch.Size([2, 10])
