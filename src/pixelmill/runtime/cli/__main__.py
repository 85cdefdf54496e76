"""``python -m pixelmill.runtime.cli``: the same as the ``pixelmill`` console script."""

from pixelmill.runtime.cli import main

main()
