"""libvips' messages reach Python logging at the levels the process shows of them: its
per-render INFO chatter only at DEBUG, so a server logging at INFO writes no line per
render for it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import pyvips

from pixelmill.observability.libvips_log import forward_libvips_messages


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def pyvips_log() -> Iterator[Records]:
    logger = logging.getLogger("pyvips")
    records = Records()
    logger.addHandler(records)
    before = logger.level
    yield records
    logger.removeHandler(records)
    logger.setLevel(before)
    forward_libvips_messages(logging.getLogger("pyvips").getEffectiveLevel())


def render() -> bytes:
    """A small render: a resize and an encode, each a libvips threadpool."""
    image = pyvips.Image.gaussnoise(400, 300).cast("uchar")
    return bytes(image.resize(0.5).write_to_buffer(".jpg", Q=80))


def from_libvips(records: Records) -> list[str]:
    return [m for m in records.messages if m.startswith("VIPS:")]


def test_at_info_a_render_sends_no_libvips_line(pyvips_log: Records) -> None:
    # given a process logging at INFO, its libvips messages forwarded for that level
    logging.getLogger("pyvips").setLevel(logging.INFO)
    assert forward_libvips_messages(logging.INFO) is False
    # when it renders
    assert render()[:3] == b"\xff\xd8\xff"
    # then libvips' per-render INFO ("threadpool completed") never reached logging
    assert from_libvips(pyvips_log) == []


def test_at_debug_every_libvips_message_is_forwarded_once(pyvips_log: Records) -> None:
    # given a process logging at DEBUG
    logging.getLogger("pyvips").setLevel(logging.DEBUG)
    assert forward_libvips_messages(logging.DEBUG) is True
    # when it renders, then libvips' INFO lines arrive
    render()
    once = from_libvips(pyvips_log)
    assert any("threadpool completed" in line for line in once), once
    # and forwarding set again replaces the handler, never stacks a second one
    pyvips_log.messages.clear()
    forward_libvips_messages(logging.INFO)
    forward_libvips_messages(logging.DEBUG)
    render()
    assert from_libvips(pyvips_log) == once
