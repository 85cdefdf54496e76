"""PyTorch networks: a U-Net for segmentation, its recurrent variant for time-lapses
(:class:`RecurrentUNet`, a ConvGRU bottleneck over the frames) and a small CNN classifier.

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


class ConvGRUCell(nn.Module):
    """A convolutional GRU cell (Ballas et al. 2016): the GRU's gates as 3 x 3
    convolutions over the input and the hidden state, which has the input's channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gates = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1)
        self.candidate = nn.Conv2d(2 * channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        update, reset = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        new = torch.tanh(self.candidate(torch.cat([x, reset * h], dim=1)))
        return (1 - update) * h + update * new


class RecurrentUNet(nn.Module):
    """A U-Net whose bottleneck is a bidirectional convolutional GRU over the frames.

    Input (N, T, C, H, W) float32, T fixed by the caller, H and W multiples of
    ``2**depth``; output (N, T, out, H, W) logits, one mask per frame. Each frame goes
    through the same encoder and decoder (skip connections from its own frame); at the
    bottleneck a forward and a backward ConvGRU pass over the T frames, mixed by a 1 x 1
    convolution and added to the frame's own features, so each frame's mask can use what
    its neighbours show (a nucleus dim in one frame, bright in the next).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, depth: int = 3, width: int = 8):
        super().__init__()
        self.unet = UNet(in_channels, out_channels, depth=depth, width=width)
        bottom = width * 2**depth
        self.forward_cell = ConvGRUCell(bottom)
        self.backward_cell = ConvGRUCell(bottom)
        self.mix = nn.Conv2d(2 * bottom, bottom, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        y = x.reshape(-1, *x.shape[2:])
        skips = []
        for down in self.unet.downs:
            y = down(y)
            skips.append(y)
            y = self.unet.pool(y)
        y = self.unet.bottom(y)
        y = y + self.mix(self._recurrent(y.reshape(-1, frames, *y.shape[1:])))
        for up, block, skip in zip(
            self.unet.ups, self.unet.up_blocks, reversed(skips), strict=True
        ):
            y = block(torch.cat([up(y), skip], dim=1))
        y = self.unet.head(y)
        return y.reshape(-1, frames, *y.shape[1:])

    def _recurrent(self, seq: torch.Tensor) -> torch.Tensor:
        """(N, T, F, h, w) bottleneck features -> (N * T, 2F, h, w), both directions."""
        frames = seq.shape[1]
        state = torch.zeros_like(seq[:, 0])
        ahead = []
        for t in range(frames):
            state = self.forward_cell(seq[:, t], state)
            ahead.append(state)
        state = torch.zeros_like(seq[:, 0])
        behind: list[torch.Tensor] = []
        for t in range(frames - 1, -1, -1):
            state = self.backward_cell(seq[:, t], state)
            behind.insert(0, state)
        both = torch.cat([torch.stack(ahead, dim=1), torch.stack(behind, dim=1)], dim=2)
        return both.reshape(-1, *both.shape[2:])
