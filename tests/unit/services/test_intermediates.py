"""The render path's store of decoded originals: bounded by bytes, least recently used
out first, one decode for concurrent misses of the same original."""

from __future__ import annotations

import threading

import pytest

from pixelmill.services.intermediates import IntermediateCache


def test_keeps_within_its_byte_budget_evicting_the_least_recently_used() -> None:
    cache = IntermediateCache(max_bytes=100)
    for key in ("a", "b", "c"):
        cache.fetch(key, lambda key=key: (key.upper(), 30))
    assert cache.fetch("a", lambda: ("fresh a", 30)) == "A"  # a hit: "a" is now recent

    cache.fetch("d", lambda: ("D", 30))  # 120 bytes: the least recently used ("b") goes

    assert cache.nbytes == 90
    assert cache.fetch("b", lambda: ("B again", 30)) == "B again"
    assert cache.nbytes <= 100


def test_rendered_results_never_take_more_than_their_share_of_the_budget() -> None:
    # given a store of 100 bytes holding two decoded originals
    cache = IntermediateCache(max_bytes=100)
    for sha in ("s1", "s2"):
        cache.fetch((sha, "dct", 2), lambda sha=sha: (sha, 30))
    # when many rendered results arrive (each asked once: nothing to share)
    for n in range(6):
        cache.fetch(("s1", "rendered", f"w={n}"), lambda n=n: (f"r{n}", 10))
    # then they hold at most a quarter of the budget, the newest kept, and the decodes
    # of the originals stay
    kinds = cache.kinds()
    assert kinds["rendered"] == 2 and kinds["dct"] == 2
    assert cache.fetch(("s1", "rendered", "w=5"), lambda: ("again", 10)) == "r5"
    assert cache.fetch(("s2", "dct", 2), lambda: ("decoded again", 30)) == "s2"
    assert cache.nbytes == 80


def test_an_intermediate_over_half_the_budget_is_made_but_not_kept() -> None:
    cache = IntermediateCache(max_bytes=100)
    assert cache.fetch("big", lambda: ("BIG", 60)) == "BIG"
    assert len(cache) == 0 and cache.nbytes == 0


def test_zero_bytes_keeps_nothing() -> None:
    cache = IntermediateCache(max_bytes=0)
    made = []
    for _ in range(3):
        cache.fetch("a", lambda: (made.append(1) or "A", 1))
    assert len(made) == 3 and len(cache) == 0


def test_nothing_made_is_nothing_kept() -> None:
    cache = IntermediateCache(max_bytes=100)
    assert cache.fetch("a", lambda: None) is None
    assert cache.fetch("a", lambda: ("A", 1)) == "A"


def test_concurrent_misses_of_one_key_share_a_single_decode() -> None:
    # given a decode that is still running when three more requests ask for it
    cache = IntermediateCache(max_bytes=100)
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def decode() -> tuple[str, int]:
        calls.append(1)
        started.set()
        release.wait(10)
        return "decoded", 10

    results: list[object] = []
    leader = threading.Thread(target=lambda: results.append(cache.fetch("img", decode)))
    leader.start()
    assert started.wait(10)
    waiters = [
        threading.Thread(target=lambda: results.append(cache.fetch("img", decode)))
        for _ in range(3)
    ]
    for t in waiters:
        t.start()
    # when the decode finishes
    release.set()
    for t in [leader, *waiters]:
        t.join(10)
    # then every request got its pixels from one decode
    assert results == ["decoded"] * 4
    assert calls == [1]


def test_a_failed_decode_is_not_kept_and_is_tried_again() -> None:
    cache = IntermediateCache(max_bytes=100)

    def broken() -> tuple[str, int]:
        raise ValueError("corrupt")

    with pytest.raises(ValueError):
        cache.fetch("a", broken)
    assert cache.fetch("a", lambda: ("A", 1)) == "A"
