"""A small graph network for cell classification, in plain torch (no PyG).

GraphSAGE-style mean aggregation (Hamilton et al. 2017): each layer updates a node from
itself and the mean of its neighbours, ``h' = ReLU(W_s h + W_n mean_{j->i} h_j) + h``,
with the mean computed by ``scatter_add`` over the edge index (exported to ONNX as
``ScatterElements`` with ``reduction="add"``; torch's exporter turns ``index_add`` into
a plain scatter that drops repeated targets, so it is not used). ``aggregate=False`` drops
the neighbour term: the same network as a per-cell MLP (the baseline it is compared
with). Imports torch at module level: only training code imports this module.
"""

from __future__ import annotations

import torch
from torch import nn


class CellGraphNet(nn.Module):
    """Node features (N, F) float32 + edge index (2, E) int64 (source, target) ->
    class logits (N, C). ``layers`` message-passing layers of ``width`` channels."""

    def __init__(
        self,
        features: int,
        classes: int,
        *,
        layers: int = 2,
        width: int = 32,
        aggregate: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.aggregate = aggregate
        self.embed = nn.Linear(features, width)
        self.own = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.neighbours = nn.ModuleList(
            nn.Linear(width, width, bias=False) for _ in range(layers if aggregate else 0)
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(x))
        src, dst = edges[0], edges[1]
        if self.aggregate:
            ones = torch.ones_like(dst, dtype=h.dtype)
            degree = torch.zeros(h.shape[0], dtype=h.dtype).scatter_add(0, dst, ones)
            degree = degree.clamp(min=1.0).unsqueeze(1)
            targets = dst.unsqueeze(1).expand(-1, h.shape[1])
        for i, own in enumerate(self.own):
            update = own(h)
            if self.aggregate:
                mean = torch.zeros_like(h).scatter_add(0, targets, h[src]) / degree
                update = update + self.neighbours[i](mean)
            h = self.drop(torch.relu(update)) + h
        return self.head(h)


class WithSoftmax(nn.Module):
    """Wraps a graph network so the exported graph returns class probabilities."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x, edges), dim=1)
