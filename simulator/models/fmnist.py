"""The Fashion-MNIST ensemble member: a small CNN whose width sets its cost.

Architecture (the shipped ensemble's, see ``simulator/data/README.md``): five conv3x3-BN-ReLU blocks with
widths ``w, w, (maxpool), 2w, 2w, (maxpool), 4w``, global average pooling, dropout 0.2, a linear classifier.
Input: ``[batch, 1, 28, 28]`` float32. The profile model name of a member of width ``w`` is ``fmnist-cnn-w{w}``.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


#: The members' input images, height x width (Fashion-MNIST's).
INPUT_SIZE = (28, 28)


class FashionCNN(nn.Module):
    """The ensemble member of base width `width` (8, 32 or 64 in the shipped ensemble)."""

    def __init__(self, width: int = 32, n_classes: int = 10, dropout: float = 0.2):
        super().__init__()
        w = width
        self.width = width
        self.features = nn.Sequential(
            _block(1, w), _block(w, w), nn.MaxPool2d(2),
            _block(w, 2 * w), _block(2 * w, 2 * w), nn.MaxPool2d(2),
            _block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def model_name(width: int) -> str:
    """Profile model name of a member of `width`."""
    return f"fmnist-cnn-w{width}"
