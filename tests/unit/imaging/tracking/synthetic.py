"""Time-lapses of moving discs with known tracks, for the tracking tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Disc:
    """A disc seen from ``start`` to ``end`` (inclusive) at ``origin + t * velocity``."""

    name: str
    origin: tuple[float, float]
    velocity: tuple[float, float]
    radius: float = 6.0
    start: int = 0
    end: int | None = None
    missing: set[int] = field(default_factory=set)

    def at(self, t: int) -> tuple[float, float]:
        dt = t - self.start
        return self.origin[0] + dt * self.velocity[0], self.origin[1] + dt * self.velocity[1]


def render(discs: list[Disc], frames: int, shape: tuple[int, int] = (96, 96), seed: int = 0):
    """``(labels, truth)``: a ``(T, H, W)`` uint16 label stack with labels shuffled per
    frame, and ``truth[t][label] = disc name``."""
    rng = np.random.default_rng(seed)
    rr, cc = np.indices(shape)
    labels = np.zeros((frames, *shape), np.uint16)
    truth: list[dict[int, str]] = []
    for t in range(frames):
        here = [
            d
            for d in discs
            if d.start <= t <= (frames - 1 if d.end is None else d.end) and t not in d.missing
        ]
        ids = rng.permutation(len(here)) + 1 + 10 * t
        truth.append({})
        for d, label in zip(here, ids, strict=True):
            r, c = d.at(t)
            labels[t][(rr - r) ** 2 + (cc - c) ** 2 <= d.radius**2] = label
            truth[t][int(label)] = d.name
    return labels, truth


def named_tracks(tracks, truth) -> dict[str, set[int]]:
    """The track ids each disc's objects got."""
    out: dict[str, set[int]] = {}
    objs = tracks.objects
    for i in range(len(objs)):
        name = truth[int(objs.frame[i])][int(objs.label[i])]
        out.setdefault(name, set()).add(int(tracks.track[i]))
    return out
