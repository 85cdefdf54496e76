"""Whole slides: opening, tiled analysis and DeepZoom pyramids (see ``analyse``)."""
