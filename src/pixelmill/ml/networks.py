"""PyTorch networks: a U-Net for segmentation and a small CNN classifier.

Imports torch at module level: only the trainer imports this module (lazily).
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with ``depth`` down-sampling levels.

    Input (N, C, H, W) float32 with H, W multiples of ``2**depth``; output (N, out, H, W)
    logits. Channels double at each level starting from ``width``.
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, depth: int = 3, width: int = 16
    ):
        super().__init__()
        chans = [width * 2**i for i in range(depth + 1)]
        self.downs = nn.ModuleList()
        cin = in_channels
        for c in chans[:-1]:
            self.downs.append(_block(cin, c))
            cin = c
        self.pool = nn.MaxPool2d(2)
        self.bottom = _block(chans[-2], chans[-1])
        self.ups = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i in range(depth, 0, -1):
            self.ups.append(nn.ConvTranspose2d(chans[i], chans[i - 1], 2, stride=2))
            self.up_blocks.append(_block(chans[i - 1] * 2, chans[i - 1]))
        self.head = nn.Conv2d(chans[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, block, skip in zip(self.ups, self.up_blocks, reversed(skips), strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.head(x)


class SmallCNN(nn.Module):
    """A small classifier: ``depth`` conv blocks (each halving H, W), global average
    pooling, a linear layer. Input (N, C, H, W); output (N, classes) logits."""

    def __init__(self, in_channels: int = 1, classes: int = 2, depth: int = 3, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(depth):
            cout = width * 2**i
            layers += [_block(cin, cout), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


class WithActivation(nn.Module):
    """Wraps a network so exported graphs return probabilities (sigmoid / softmax)."""

    def __init__(self, net: nn.Module, kind: str) -> None:
        super().__init__()
        self.net = net
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return torch.sigmoid(y) if self.kind == "sigmoid" else torch.softmax(y, dim=1)
