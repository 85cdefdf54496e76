"""After start-up the collector walks only what came later: everything alive when
:func:`settle` ran is frozen (and still freed by reference counting)."""

from __future__ import annotations

import gc
import weakref

from pixelmill.runtime import heap


class _Thing:
    pass


def test_settle_freezes_what_start_up_left_and_refcounting_still_frees_it() -> None:
    started = _Thing()
    gone = weakref.ref(started)
    try:
        heap.settle()
        assert gc.get_freeze_count() > 0
        assert not any(o is started for o in gc.get_objects())  # not walked any more
        later = _Thing()
        assert any(o is later for o in gc.get_objects())  # what came after is
        del started
        assert gone() is None
    finally:
        gc.unfreeze()
