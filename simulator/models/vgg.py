"""VGG-16 (configuration D, no batch norm) with torchvision's layer structure: 138,357,544 parameters."""

from __future__ import annotations

import torch
from torch import nn

#: Output channels of each 3x3 convolution; "M" is a 2x2 max-pool.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _features(layers) -> nn.Sequential:
    modules, c_in = [], 3
    for spec in layers:
        if spec == "M":
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            modules += [nn.Conv2d(c_in, spec, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c_in = spec
    return nn.Sequential(*modules)


class VGG(nn.Module):
    """Convolution stack, adaptive 7x7 average pool, three linear layers with dropout."""

    def __init__(self, layers=VGG16_LAYERS, n_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = _features(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
