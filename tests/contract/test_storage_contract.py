"""One contract for every object storage: memory, local folder and S3 (real SeaweedFS).

Each backend is built by the composition root from a storage URL, the way a user
configures it, and must behave the same from the outside.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelmill.backends.storage.base import Storage, check_key
from pixelmill.backends.storage.s3 import S3Storage
from pixelmill.errors import (
    BackendUnavailable,
    InvalidInput,
    NotFound,
    PixelmillError,
    StorageError,
)
from pixelmill.runtime.container import make_storage
from pixelmill.settings import StorageSettings
from tests.conftest import make_settings

BACKENDS = ["memory", "filesystem", pytest.param("s3", marks=pytest.mark.server)]
INVALID_KEYS = ["", "../x", "a/../../x", "/abs", "a//b", "a\\b", "a\x00b", "a/", "./a", "a\n"]
MB = 1024 * 1024


def build(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    if kind == "memory":
        storage = StorageSettings(url="memory://")
    elif kind == "filesystem":
        storage = StorageSettings(url=f"file://{tmp_path / 'objects'}")
    else:
        storage = request.getfixturevalue("s3_settings")
    return make_storage(make_settings(tmp_path, storage=storage))


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    s = build(request.param, tmp_path, request)
    yield s
    close = getattr(s, "close", None)
    if close:
        close()


def big_file(path: Path, size: int) -> Path:
    # distinct bytes per MB so a reordered or dropped part would not go unnoticed
    with path.open("wb") as fh:
        for i in range(size // MB):
            fh.write(hashlib.sha256(str(i).encode()).digest() * (MB // 32))
        fh.write(b"t" * (size % MB))
    return path


# --- basic reads and writes -----------------------------------------------------------


def test_put_then_get_returns_the_same_bytes(storage: Storage) -> None:
    storage.put("originals/ab/abc", b"\x00\xffimage bytes", content_type="image/png")
    assert storage.get("originals/ab/abc") == b"\x00\xffimage bytes"
    assert storage.exists("originals/ab/abc")
    assert storage.size("originals/ab/abc") == 13


def test_put_replaces_the_previous_object(storage: Storage) -> None:
    storage.put("k", b"first version, longer")
    storage.put("k", b"second")
    assert storage.get("k") == b"second"
    assert storage.size("k") == 6


def test_an_empty_object_is_an_object(storage: Storage) -> None:
    storage.put("empty", b"")
    assert storage.exists("empty")
    assert storage.get("empty") == b""
    assert storage.size("empty") == 0


def test_put_file_streams_a_multi_megabyte_file(storage: Storage, tmp_path: Path) -> None:
    # given a file larger than one multipart chunk (8 MB) and not a multiple of it
    src = big_file(tmp_path / "upload.bin", 17 * MB + 123)
    # when it is stored from its path
    storage.put_file("uploads/big.bin", src, content_type="application/octet-stream")
    # then every byte comes back, in order
    assert storage.size("uploads/big.bin") == src.stat().st_size
    assert hashlib.sha256(storage.get("uploads/big.bin")).digest() == (
        hashlib.sha256(src.read_bytes()).digest()
    )


def test_open_streams_the_object_in_chunks(storage: Storage, tmp_path: Path) -> None:
    src = big_file(tmp_path / "obj.bin", 3 * MB + 7)
    storage.put_file("stream/obj", src)
    digest = hashlib.sha256()
    with storage.open("stream/obj") as fh:
        while chunk := fh.read(256 * 1024):
            assert len(chunk) <= 256 * 1024
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(src.read_bytes()).digest()


def test_a_stream_can_be_closed_before_its_end(storage: Storage) -> None:
    storage.put("partial", b"0123456789" * 10_000)
    fh = storage.open("partial")
    assert fh.read(10) == b"0123456789"
    fh.close()
    # and the object is still readable afterwards
    assert storage.get("partial")[:10] == b"0123456789"


def test_local_path_is_absent_or_holds_the_object(storage: Storage) -> None:
    storage.put("local/x", b"abc")
    path = storage.local_path("local/x")
    assert path is None or path.read_bytes() == b"abc"


# --- delete, exists, missing keys -----------------------------------------------------


def test_delete_removes_and_is_idempotent(storage: Storage) -> None:
    storage.put("gone/soon", b"x")
    storage.delete("gone/soon")
    assert not storage.exists("gone/soon")
    storage.delete("gone/soon")  # again: no error
    storage.delete("never/existed")
    with pytest.raises(NotFound):
        storage.get("gone/soon")


@pytest.mark.parametrize("read", ["get", "open", "size"])
def test_missing_keys_raise_not_found(storage: Storage, read: str) -> None:
    with pytest.raises(NotFound):
        getattr(storage, read)("no/such/object")
    assert not storage.exists("no/such/object")


def test_a_folder_of_objects_is_not_an_object(storage: Storage) -> None:
    storage.put("folder/child", b"c")
    assert not storage.exists("folder")
    with pytest.raises(NotFound):
        storage.get("folder")
    storage.delete("folder")  # nothing to delete: no error, the child stays
    assert storage.get("folder/child") == b"c"


def test_a_key_below_an_object_is_missing(storage: Storage) -> None:
    storage.put("file", b"f")
    assert not storage.exists("file/below")
    with pytest.raises(NotFound):
        storage.get("file/below")
    storage.delete("file/below")
    assert storage.get("file") == b"f"


# --- listing --------------------------------------------------------------------------

KEYS = ["img/x", "img-1", "img/a/b", "img0", "imh", "a/.tmp/x", "a.b", "a/b", "a0"]


def test_list_by_prefix_in_lexicographic_order(storage: Storage) -> None:
    # given keys whose byte order differs from a folder-by-folder walk ("a.b" < "a/b")
    for key in KEYS:
        storage.put(key, key.encode())
    # then every listing is sorted, complete, and only holds matching keys
    assert list(storage.list()) == sorted(KEYS)
    assert list(storage.list("img")) == ["img-1", "img/a/b", "img/x", "img0"]
    assert list(storage.list("img/")) == ["img/a/b", "img/x"]
    assert list(storage.list("img/a/")) == ["img/a/b"]
    assert list(storage.list("a/")) == ["a/.tmp/x", "a/b"]
    assert list(storage.list("zzz")) == []
    assert list(storage.list("../")) == []


def test_list_returns_every_key(storage: Storage) -> None:
    keys = [f"many/{i:03d}" for i in range(40)]
    for key in reversed(keys):
        storage.put(key, b"")
    assert list(storage.list("many/")) == keys


def test_deleted_keys_leave_the_listing(storage: Storage) -> None:
    storage.put("l/1", b"1")
    storage.put("l/2", b"2")
    storage.delete("l/1")
    assert list(storage.list("l/")) == ["l/2"]


# --- keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused_by_every_operation(
    storage: Storage, key: str, tmp_path: Path
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    calls = {
        "put": lambda: storage.put(key, b"x"),
        "put_file": lambda: storage.put_file(key, src),
        "get": lambda: storage.get(key),
        "open": lambda: storage.open(key),
        "size": lambda: storage.size(key),
        "exists": lambda: storage.exists(key),
        "delete": lambda: storage.delete(key),
        "local_path": lambda: storage.local_path(key),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidInput):
            call()
            pytest.fail(f"{name}({key!r}) was accepted")
    assert list(storage.list()) == []


VALID_KEY = st.lists(
    st.text(
        alphabet="abcXYZ019._-",
        min_size=1,
        max_size=12,
    ).filter(lambda p: p not in (".", "..") and p[0].isalnum()),
    min_size=1,
    max_size=4,
).map("/".join)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(key=VALID_KEY, data=st.binary(max_size=64))
def test_every_valid_key_round_trips(storage: Storage, key: str, data: bytes) -> None:
    # given any key the syntax check accepts (one at a time: a folder cannot hold "a"
    # and "a/b" at once, and an emptied folder must not block a later "a")
    assert check_key(key) == key
    storage.put(key, data)
    assert storage.get(key) == data
    assert key in set(storage.list(key))
    storage.delete(key)
    assert not storage.exists(key)
    assert list(storage.list()) == []


# --- atomicity ------------------------------------------------------------------------


def test_readers_never_see_a_partial_object(storage: Storage) -> None:
    # given an object that a writer keeps replacing with a whole other version
    versions = [bytes([65 + i]) * (MB + 17 * i) for i in range(3)]
    storage.put("hot", versions[0])
    stop = threading.Event()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            i = 0
            while not stop.is_set():
                i += 1
                storage.put("hot", versions[i % 3])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # when readers read while it is being written
        for _ in range(15):
            seen.append(storage.get("hot"))
            with storage.open("hot") as fh:
                seen.append(fh.read())
    finally:
        stop.set()
        thread.join()
    # then each read is exactly one whole version
    assert not errors
    assert all(body in versions for body in seen)


# --- filesystem only: keys stay inside the folder, failed writes leave nothing ------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def fs(folder: Path, tmp_path: Path) -> Storage:
    return make_storage(make_settings(tmp_path, storage=StorageSettings(url=f"file://{folder}")))


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.one_of(
        st.text(max_size=30),
        st.lists(
            st.sampled_from(["..", ".", "", "a", "b.c", "%2e%2e", "~", "\\..", "\x00", "/"]),
            max_size=6,
        ).map("/".join),
    )
)
def test_filesystem_keys_never_escape_the_folder(
    fs: Storage, folder: Path, tmp_path: Path, key: str
) -> None:
    outside_before = files_under(tmp_path) - files_under(folder)
    # when any string is used as a key, it is either refused ...
    try:
        fs.put(key, b"payload")
    except InvalidInput:
        assert files_under(tmp_path) - files_under(folder) == outside_before
        return
    except PixelmillError:
        # e.g. "a" after "a/b" was stored: refused for a reason other than the key
        assert files_under(tmp_path) - files_under(folder) == outside_before
        return
    # ... or the object lands inside the folder, and nowhere else
    path = fs.local_path(key)
    assert path is not None
    assert path.resolve().is_relative_to(folder.resolve())
    assert files_under(tmp_path) - files_under(folder) == outside_before
    fs.delete(key)


def tmp_leftovers(folder: Path) -> list[Path]:
    return list((folder / ".tmp").iterdir())


def test_a_write_that_fails_midway_leaves_the_old_object(
    fs: Storage, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a stored object and a disk that fills up halfway through the next write
    fs.put("photo", b"old complete version")
    src = big_file(tmp_path / "new.bin", 2 * MB)

    def half_then_full(fsrc: BinaryIO, fdst: BinaryIO, length: int = 0) -> None:
        fdst.write(fsrc.read(MB))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("shutil.copyfileobj", half_then_full)
    # when the write fails
    with pytest.raises(PixelmillError, match="No space left"):
        fs.put_file("photo", src)
    # then readers still get the old version, whole, and no temp file is left behind
    assert fs.get("photo") == b"old complete version"
    assert tmp_leftovers(folder) == []
    assert list(fs.list()) == ["photo"]


def test_a_failed_first_write_leaves_no_object(
    fs: Storage, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(PixelmillError, match="Input/output error"):
        fs.put("new/object", b"data that never became visible")
    monkeypatch.undo()
    assert not fs.exists("new/object")
    assert tmp_leftovers(folder) == []
    assert list(fs.list()) == []


def test_stale_temp_files_of_a_crashed_writer_are_swept(folder: Path, tmp_path: Path) -> None:
    # given a temp file left by a writer that died an hour ago, and one being written now
    (folder / ".tmp").mkdir(parents=True)
    stale = folder / ".tmp" / "put-crashed"
    stale.write_bytes(b"half")
    os.utime(stale, (1_000_000, 1_000_000))
    fresh = folder / ".tmp" / "put-live"
    fresh.write_bytes(b"in progress")
    # when the storage starts
    fs = make_storage(make_settings(tmp_path, storage=StorageSettings(url=f"file://{folder}")))
    # then only the stale one is gone, and neither is an object
    assert tmp_leftovers(folder) == [fresh]
    assert list(fs.list()) == []


def test_an_object_cannot_sit_where_a_folder_is(fs: Storage) -> None:
    fs.put("a/b", b"child")
    with pytest.raises(PixelmillError):
        fs.put("a", b"parent")
    with pytest.raises(PixelmillError):
        fs.put("a/b/c", b"grandchild")
    assert fs.get("a/b") == b"child"


# --- S3 only: the bucket, the prefix, paging and vendor errors -------------------------


def s3(settings: StorageSettings, **kwargs: Any) -> S3Storage:
    kwargs.setdefault("prefix", settings.s3_prefix)
    return S3Storage(
        bucket=settings.url.removeprefix("s3://"),
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        **kwargs,
    )


@pytest.mark.server
def test_s3_creates_its_bucket_on_first_use(s3_settings: StorageSettings) -> None:
    s3_settings = s3_settings.model_copy(update={"url": f"s3://pm-new-{uuid.uuid4().hex[:8]}"})
    storage = s3(s3_settings)
    storage.ping()  # a bucket that does not exist yet is no outage
    storage.put("first", b"1")
    other = s3(s3_settings)  # a second instance finds the bucket made by the first
    assert other.get("first") == b"1"
    other.ping()


@pytest.mark.server
def test_s3_list_pages_through_many_keys(s3_settings: StorageSettings) -> None:
    storage = s3(s3_settings, page_size=10)
    keys = [f"p/{i:02d}" for i in range(35)]
    for key in keys:
        storage.put(key, b"")
    assert list(storage.list("p/")) == keys


@pytest.mark.server
def test_s3_prefixes_keep_tenants_apart(s3_settings: StorageSettings) -> None:
    # given two storages sharing one bucket under different prefixes
    base = s3_settings.s3_prefix
    a = s3(s3_settings, prefix=f"{base}/tenant-a/")
    b = s3(s3_settings, prefix=f"/{base}/tenant-b")
    a.put("x", b"a")
    b.put("x", b"b")
    # then each sees only its own objects, stored under its prefix in the bucket
    assert a.get("x") == b"a"
    assert b.get("x") == b"b"
    assert list(a.list()) == ["x"]
    assert list(s3(s3_settings).list()) == ["tenant-a/x", "tenant-b/x"]
    assert list(s3(s3_settings, prefix="").list(f"{base}/")) == [
        f"{base}/tenant-a/x",
        f"{base}/tenant-b/x",
    ]
    a.delete("x")
    assert b.exists("x")


@pytest.mark.server
def test_s3_wrong_credentials_are_not_ready(s3_settings: StorageSettings) -> None:
    s3(s3_settings).put("secret", b"s")
    wrong = s3_settings.model_copy(update={"s3_secret_key": "not-the-secret"})
    storage = s3(wrong)
    with pytest.raises(BackendUnavailable, match="not usable"):
        storage.ping()
    with pytest.raises(StorageError):
        storage.get("secret")


def test_s3_unreachable_endpoint_is_a_backend_outage() -> None:
    # given an endpoint where nothing listens
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    storage = S3Storage(
        bucket="pm-nowhere",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key="k",
        secret_key="s",
        max_attempts=1,
    )
    # then every call says the backend is unavailable (503), never a vendor error
    with pytest.raises(BackendUnavailable):
        storage.ping()
    with pytest.raises(BackendUnavailable):
        storage.put("k", b"x")
    with pytest.raises(BackendUnavailable):
        storage.get("k")


@pytest.mark.parametrize(
    "url", ["s3://", "s3://UPPER", "s3://a", "s3://under_score", "s3://newline\n"]
)
def test_s3_bad_bucket_names_are_refused_up_front(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="bucket"):
        make_storage(make_settings(tmp_path, storage=StorageSettings(url=url)))
