"""One contract for every result cache: the per-process LRU, Redis (a real server) and
the null cache, each built by the composition root from a cache URL."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixelmill.backends.cache.base import Cache
from pixelmill.backends.cache.memory import MemoryCache
from pixelmill.backends.cache.redis import RedisCache
from pixelmill.errors import BackendUnavailable
from pixelmill.runtime.container import make_cache
from pixelmill.settings import CacheSettings
from tests.conftest import make_settings

KEEPING = ["memory", pytest.param("redis", marks=pytest.mark.server)]


def build(kind: str, tmp_path: Path, request: pytest.FixtureRequest, **cache: object) -> Cache:
    url = {"memory": "memory://", "none": "none://"}.get(kind)
    if url is None:
        url = request.getfixturevalue("redis_url")
    settings = make_settings(tmp_path, cache=CacheSettings(url=url, **cache))  # type: ignore[arg-type]
    return make_cache(settings)


@pytest.fixture(params=KEEPING)
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cache]:
    c = build(request.param, tmp_path, request)
    yield c
    close = getattr(c, "close", None)
    if close:
        close()


# --- caches that keep values ----------------------------------------------------------


def test_a_set_value_is_returned(cache: Cache) -> None:
    assert cache.get("render:1") is None
    cache.set("render:1", b"\xff\xd8jpeg bytes\x00")
    assert cache.get("render:1") == b"\xff\xd8jpeg bytes\x00"
    cache.ping()


def test_an_empty_value_is_a_hit_not_a_miss(cache: Cache) -> None:
    cache.set("empty", b"")
    assert cache.get("empty") == b""


def test_set_replaces_and_delete_removes(cache: Cache) -> None:
    cache.set("k", b"one")
    cache.set("k", b"two")
    assert cache.get("k") == b"two"
    cache.delete("k")
    assert cache.get("k") is None
    cache.delete("k")  # deleting a missing key is fine
    cache.delete("never-set")


def test_a_zero_ttl_keeps_nothing_and_drops_the_old_value(cache: Cache) -> None:
    cache.set("k", b"old")
    cache.set("k", b"new", ttl=0)
    assert cache.get("k") is None


@pytest.mark.parametrize("kind", KEEPING)
def test_entries_expire_after_their_ttl(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # given a cache whose configured default lifetime is one second
    c = build(kind, tmp_path, request, ttl_seconds=1)
    c.set("default", b"d")
    c.set("short", b"s", ttl=1)
    c.set("long", b"l", ttl=86400)
    assert (c.get("default"), c.get("short")) == (b"d", b"s")
    # when more than a second passes
    time.sleep(1.2)
    # then the entries that lived one second are gone, the long one is not
    assert c.get("default") is None
    assert c.get("short") is None
    assert c.get("long") == b"l"


# --- the null cache -------------------------------------------------------------------


def test_the_null_cache_keeps_nothing(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    c = build("none", tmp_path, request)
    c.set("k", b"v")
    assert c.get("k") is None
    c.delete("k")
    c.ping()


# --- memory: an LRU bounded in bytes --------------------------------------------------


def test_memory_cache_evicts_the_least_recently_used_beyond_its_byte_bound() -> None:
    # given a 100-byte cache holding two 40-byte values, the first one read recently
    cache = MemoryCache(max_bytes=100)
    cache.set("a", b"a" * 40)
    cache.set("b", b"b" * 40)
    assert cache.get("a") is not None
    # when a third value does not fit
    cache.set("c", b"c" * 40)
    # then the least recently used one ("b") made room, and the bound holds
    assert cache.get("b") is None
    assert cache.get("a") == b"a" * 40
    assert cache.get("c") == b"c" * 40
    assert cache.size_bytes == 80


def test_memory_cache_refuses_a_value_larger_than_its_bound_without_keeping_stale_bytes() -> None:
    cache = MemoryCache(max_bytes=100)
    cache.set("k", b"small")
    cache.set("k", b"x" * 101)
    assert cache.get("k") is None
    assert cache.size_bytes == 0


def test_memory_cache_bound_holds_under_concurrent_writers() -> None:
    cache = MemoryCache(max_bytes=10_000)

    def writer(n: int) -> None:
        for i in range(500):
            cache.set(f"{n}:{i}", bytes(100 + (i % 7) * 50))
            cache.get(f"{n}:{i - 3}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0 < cache.size_bytes <= 10_000


# --- redis: an outage is a miss, never an error ---------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redis_down_means_misses_not_errors() -> None:
    # given a Redis cache pointed at a port where nothing listens
    cache = RedisCache(f"redis://127.0.0.1:{closed_port()}/0")
    # then renders go on without a cache
    cache.set("k", b"v")
    assert cache.get("k") is None
    cache.delete("k")
    # and readiness reports the outage
    with pytest.raises(BackendUnavailable):
        cache.ping()
    cache.close()


def test_a_hung_redis_is_skipped_instead_of_waited_for_on_every_request() -> None:
    # given a "Redis" that accepts connections but never answers
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    cache = RedisCache(f"redis://127.0.0.1:{server.getsockname()[1]}/0", retry_after=60)
    try:
        # when many requests use the cache
        results = [cache.get(f"k{i}") for i in range(5)]
        cache.set("k", b"v")
        # then all are misses, and only the first one waited on the hung server
        assert results == [None] * 5
        assert len(accepted) == 1
    finally:
        cache.close()
        server.close()
        for conn in accepted:
            conn.close()


@pytest.mark.server
def test_redis_caches_share_values_and_prefixes_keep_them_apart(redis_url: str) -> None:
    # given two gateway instances on one Redis, and a third app using another prefix
    first, second = RedisCache(redis_url), RedisCache(redis_url)
    other = RedisCache(redis_url, prefix="other:")
    first.set("k", b"rendered once")
    # then the second instance hits, the other app does not
    assert second.get("k") == b"rendered once"
    assert other.get("k") is None
    for c in (first, second, other):
        c.close()
