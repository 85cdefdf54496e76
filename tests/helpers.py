"""Test helpers: server reachability and images made on the fly."""

from __future__ import annotations

import os
import socket
from typing import Any, NoReturn

import numpy as np
import pytest
import pyvips

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_server(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (CI) unless ``host:port`` accepts TCP connections."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError as exc:
        unavailable(f"{name} is not reachable at {host}:{port} ({exc})")


def unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (CI) for a missing server or tool, saying ``reason``."""
    if IN_CI:
        pytest.fail(f"{reason}; CI requires it", pytrace=False)
    pytest.skip(reason)


def make_image(
    width: int = 640,
    height: int = 480,
    *,
    fmt: str = ".jpg",
    bands: int = 3,
    seed: int = 0,
    **save: object,
) -> bytes:
    """A deterministic, non-trivial test image (gradients + noise) encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [xx * 255 / max(width - 1, 1), yy * 255 / max(height - 1, 1), (xx + yy) % 256], axis=-1
    )
    noise = rng.normal(0, 12, size=(height, width, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)[..., :bands] if bands <= 3 else None
    if bands == 4:
        alpha = np.full((height, width, 1), 200, dtype=np.uint8)
        arr = np.concatenate([np.clip(base + noise, 0, 255).astype(np.uint8), alpha], axis=-1)
    image = pyvips.Image.new_from_array(arr)
    image = image.copy(interpretation="srgb" if bands >= 3 else "b-w")
    return bytes(image.write_to_buffer(fmt, **save))


def animation(frames: int, width: int = 80, height: int = 60, fmt: str = ".gif") -> bytes:
    """Frames with a red bar moving right: frame i has red at x 16i..16i+16."""
    strip = np.zeros((frames * height, width, 3), np.uint8)
    for i in range(frames):
        strip[i * height : (i + 1) * height, i * 16 : (i + 1) * 16] = (255, 0, 0)
    image = pyvips.Image.new_from_array(strip).copy(interpretation="srgb")
    image.set_type(pyvips.GValue.gint_type, "page-height", height)
    image.set_type(pyvips.GValue.array_int_type, "delay", [80] * frames)
    return bytes(image.write_to_buffer(fmt))


def make_key(
    container: Any,
    name: str,
    role: str = "write",
    *,
    username: str | None = None,
    site_role: str | None = None,
) -> tuple[Any, str]:
    """An API key of a user of its own (or of ``username``'s, made when missing): an
    admin user for an admin key, else a member. Returns the key record and its secret."""
    import secrets as _secrets

    site_role = site_role or ("admin" if role == "admin" else "member")
    username = username or f"u-{_secrets.token_hex(4)}"
    user = container.users.find(username) or container.users.create(username, site_role=site_role)
    return container.keys.create(name, role, user_id=user.id)  # type: ignore[no-any-return]


def assert_golden(folder: str, name: str, image: np.ndarray, *, min_ssim: float = 0.98) -> None:
    """Compare ``image`` (uint8, H x W x C) with ``tests/golden/<folder>/<name>.png`` by
    SSIM. ``PIXELMILL_UPDATE_GOLDEN=1`` (re)writes it after an intended visual change."""
    from pathlib import Path

    from skimage.metrics import structural_similarity

    path = Path(__file__).parent / "golden" / folder / f"{name}.png"
    update = os.environ.get("PIXELMILL_UPDATE_GOLDEN") == "1"
    if update or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pyvips.Image.new_from_array(image).write_to_file(str(path))
        if not update:
            pytest.fail(f"golden {path.name} was missing and has been written; check it in")
    golden = pyvips.Image.new_from_file(str(path)).numpy()
    assert golden.shape == image.shape, f"{name}: {image.shape} != golden {golden.shape}"
    channels = -1 if image.ndim == 3 else None
    score = structural_similarity(golden, image, channel_axis=channels, data_range=255)
    assert score >= min_ssim, f"{name}: SSIM {score:.3f} < {min_ssim}"


def libvips_operations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the libvips operations run from now on, in order (each still runs)."""
    names: list[str] = []
    call = pyvips.Operation.call

    def counted(name: str, *args: object, **kwargs: object) -> object:
        names.append(name)
        return call(name, *args, **kwargs)

    monkeypatch.setattr(pyvips.Operation, "call", staticmethod(counted))
    return names
