"""Whole slides: open a slide, analyse it tile by tile, write DeepZoom pyramids.

==============  ===============================================================
module          what it holds
==============  ===============================================================
``reader``      :class:`Slide`: size, regions and a thumbnail of a slide file
``deepzoom``    DeepZoom pyramids of a slide and of its object contours
``plan``        the preset as tiles see it, the tissue mask, the one threshold
                and marker distance calibrated on the whole slide
``analyse``     :func:`analyse_slide`: segment and measure tile by tile, stream
                labels, objects and summary to a folder
``deidentify``  the label/macro images and names/dates a slide gives away, and a
                copy without them
==============  ===============================================================

Why this lives in ``imaging`` although it touches files: like libvips (which the rest
of ``imaging`` already uses to decode), it reads only the slide path it is given and
writes only into the folder it is given. It opens no connection, reads no setting and
picks no storage; where a slide comes from and where its outputs go is the caller's
business (the CLI in ``runtime/cli_analysis.py``, a job kind). Vendor formats go through
OpenSlide, imported only when such a slide is opened.
"""

from __future__ import annotations

from pixelmill.imaging.slides.analyse import SlideResult, analyse_slide
from pixelmill.imaging.slides.deepzoom import deepzoom, overlay_deepzoom
from pixelmill.imaging.slides.reader import OPENSLIDE_SUFFIXES, Slide

__all__ = [
    "OPENSLIDE_SUFFIXES",
    "Slide",
    "SlideResult",
    "analyse_slide",
    "deepzoom",
    "overlay_deepzoom",
]
