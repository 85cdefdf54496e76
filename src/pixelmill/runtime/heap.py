"""The server and worker processes' garbage collector, settled once start-up is done.

A started gateway holds about 180,000 objects that live as long as the process (modules,
the app, the container). CPython's full collections walk all of them each time; under
render load they came every second or so and took about a tenth of a millisecond per
request on average (3 % of a small render), twice that with tracing on, whose finished
spans wait in the export queue long enough to reach the oldest generation
(docs/benchmarks.md, "Observability overhead"). :func:`settle` moves everything alive at
the end of start-up into the permanent generation (``gc.freeze``), so later collections
walk only what requests made. Frozen objects are still freed when their reference count
drops; only cycles among them are never collected, and start-up leaves none worth it.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once, then freeze every object alive now (call at the end of start-up)."""
    gc.collect()
    gc.freeze()


__all__ = ["settle"]
