"""Which libvips messages reach Python logging.

pyvips hands every level of libvips' ``VIPS`` log domain to the ``pyvips`` logger,
through a C-to-Python callback that takes the GIL. libvips says something at INFO on
every render ("threadpool completed with 2 workers"): a callback per render in every
process, and at log level INFO a JSON line per render that tells an operator nothing
(about 5 % of a small render's CPU, docs/benchmarks.md "Observability overhead").

:func:`forward_libvips_messages` keeps pyvips' own callback but registers it for the
levels the process's log level shows of libvips: WARNING and above, all of them at
DEBUG. What is not forwarded goes to GLib's default handler, which drops INFO and DEBUG
unless ``G_MESSAGES_DEBUG=VIPS`` is set (then they go to stderr).

pyvips keeps its handler's id in ``pyvips._log_handler_id`` (and removes that handler at
exit); the id is swapped there, so nothing else changes. pyvips is pinned.
"""

from __future__ import annotations

import logging

__all__ = ["forward_libvips_messages"]


def forward_libvips_messages(level: int) -> bool:
    """Forward libvips' messages of the levels ``level`` (a :mod:`logging` level) shows
    to the ``pyvips`` logger, and no others. Returns whether INFO and DEBUG go too."""
    import pyvips

    handler_id = getattr(pyvips, "_log_handler_id", None)
    if not handler_id:  # a pyvips that forwards nothing (or not the way it is pinned)
        return False
    flags = pyvips.GLogLevelFlags
    levels = (
        flags.LEVEL_WARNING
        | flags.LEVEL_CRITICAL
        | flags.LEVEL_ERROR
        | flags.FLAG_FATAL
        | flags.FLAG_RECURSION
    )
    chatty = level <= logging.DEBUG
    if chatty:
        levels |= flags.LEVEL_MESSAGE | flags.LEVEL_INFO | flags.LEVEL_DEBUG
    glib = pyvips.glib_lib
    glib.g_log_remove_handler(b"VIPS", handler_id)
    pyvips._log_handler_id = glib.g_log_set_handler(
        b"VIPS", levels, pyvips._log_handler_cb, pyvips.ffi.NULL
    )
    return chatty
