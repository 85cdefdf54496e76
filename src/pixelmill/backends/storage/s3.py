"""S3-compatible object storage (AWS S3, SeaweedFS, MinIO, Ceph RGW, ...) over boto3.

Objects live at ``prefix + key`` in one bucket. S3 makes a PUT (or a completed multipart
upload) visible atomically, so readers see a whole object or none of it. Large files are
streamed with multipart uploads whose memory is bounded by ``chunk_bytes * concurrency``.
Every boto3/botocore error is translated into :mod:`pixelmill.errors` here.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from pixelmill.backends.storage.base import check_key
from pixelmill.errors import BackendUnavailable, InvalidInput, NotFound, StorageError

# DNS-compatible bucket names (the rules every S3 implementation accepts)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_MISSING_KEY = {"NoSuchKey", "NotFound", "404"}
_UNREACHABLE = (BotoConnectionError, HTTPClientError, IncompleteReadError)
_MB = 1024 * 1024

# one boto3 session for the process: each new session re-reads the S3 service model
# (~0.3 s); clients are thread-safe, but making them from a shared session is not
_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def make_client(**kwargs: Any) -> Any:
    """A boto3 S3 client from the process's one session (``kwargs`` as ``client()``)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client("s3", **kwargs)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


class _Body(io.RawIOBase):
    """A raw stream over a botocore ``StreamingBody`` that translates read errors."""

    def __init__(self, body: Any, key: str) -> None:
        self._body = body
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            chunk = self._body.read(len(view))
        except _UNREACHABLE as exc:
            raise BackendUnavailable(f"S3 read of {self._key!r} interrupted: {exc}") from exc
        n = len(chunk)
        view[:n] = chunk
        return n

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Storage:
    """Objects in ``bucket`` under ``prefix``; the bucket is created on first use.

    ``endpoint_url`` selects an S3-compatible server (path-style addressing is used then);
    ``None`` means AWS. Without ``access_key``/``secret_key`` boto3's usual credential
    chain applies (instance roles, web identity, ...). ``chunk_bytes`` is the multipart
    part size and ``concurrency`` the parts in flight for :meth:`put_file`; ``page_size``
    the keys per listing request; ``max_attempts`` counts tries per request, with backoff.
    """

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        *,
        chunk_bytes: int = 8 * _MB,
        concurrency: int = 4,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        page_size: int = 1000,
        max_attempts: int = 3,
    ) -> None:
        if not _BUCKET.fullmatch(bucket or ""):
            raise InvalidInput(
                f"invalid S3 bucket name {bucket!r}: 3-63 characters a-z 0-9 . - "
                "(set the storage url as s3://BUCKET)"
            )
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        config = Config(
            region_name=region,
            signature_version="s3v4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            # the gateway reads from many threads at once
            max_pool_connections=32,
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # S3-compatible servers differ in trailing-checksum support; send one only
            # where the API demands it
            request_checksum_calculation="when_required",
        )
        try:
            self._client = make_client(
                endpoint_url=endpoint_url,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=config,
            )
        except ValueError as exc:  # e.g. an endpoint that is not a URL
            raise InvalidInput(f"invalid S3 settings: {exc}") from exc
        self._transfer = TransferConfig(
            multipart_threshold=chunk_bytes,
            multipart_chunksize=chunk_bytes,
            max_concurrency=concurrency,
            max_io_queue=concurrency * 2,
            preferred_transfer_client="classic",
        )
        # parts read from disk but not yet sent (s3transfer's default of 10 would allow
        # 80 MB with 8 MB parts); this keeps an upload at ~chunk_bytes * concurrency
        self._transfer.max_in_memory_upload_chunks = concurrency
        self._page_size = page_size
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    # -- helpers ---------------------------------------------------------------------

    def _where(self) -> str:
        return f"s3://{self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def _fail(self, exc: Exception, key: str | None = None) -> NoReturn:
        """Raise the pixelmill error for a boto3/botocore error."""
        what = f"{key!r} in {self._where()}" if key is not None else self._where()
        if isinstance(exc, ClientError):
            code = _code(exc)
            if key is not None and code in _MISSING_KEY:
                raise NotFound(f"no object {key!r}") from exc
            if code == "NoSuchBucket":
                self._bucket_ready = False  # deleted behind our back: recreate on next use
                raise StorageError(f"S3 bucket {self.bucket!r} does not exist") from exc
            if _status(exc) >= 500 or code in ("SlowDown", "ServiceUnavailable"):
                raise BackendUnavailable(f"S3 unavailable for {what}: {code}") from exc
            raise StorageError(f"S3 error {code or _status(exc)} for {what}: {exc}") from exc
        if isinstance(exc, _UNREACHABLE):
            raise BackendUnavailable(f"S3 unreachable for {what}: {exc}") from exc
        raise StorageError(f"S3 error for {what}: {exc}") from exc

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet (idempotent, thread-safe)."""
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    self._fail(exc)
                try:
                    self._client.create_bucket(Bucket=self.bucket)
                except ClientError as create_exc:
                    if _code(create_exc) not in (
                        "BucketAlreadyOwnedByYou",
                        "BucketAlreadyExists",
                    ):
                        self._fail(create_exc)
                except (BotoCoreError, ValueError) as create_exc:
                    self._fail(create_exc)
            except (BotoCoreError, ValueError) as exc:
                self._fail(exc)
            self._bucket_ready = True

    # -- the Storage protocol ----------------------------------------------------------

    def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        name = self._key(key)
        self.ensure_bucket()
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self._client.put_object(Bucket=self.bucket, Key=name, Body=bytes(data), **extra)
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, key)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        name = self._key(key)
        self.ensure_bucket()
        extra = {"ContentType": content_type} if content_type else {}
        try:
            # the transfer manager streams parts from disk and aborts the multipart
            # upload on failure, so no partial object ever becomes visible
            with create_transfer_manager(self._client, self._transfer) as manager:
                manager.upload(str(path), self.bucket, name, extra_args=extra).result()
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, key)

    def _get_object(self, key: str) -> Any:
        name = self._key(key)
        self.ensure_bucket()
        try:
            return self._client.get_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, key)

    def get(self, key: str) -> bytes:
        body = self._get_object(key)["Body"]
        try:
            return bytes(body.read())
        except _UNREACHABLE as exc:
            raise BackendUnavailable(f"S3 read of {key!r} interrupted: {exc}") from exc
        finally:
            body.close()

    def open(self, key: str) -> BinaryIO:
        body = self._get_object(key)["Body"]
        return io.BufferedReader(_Body(body, key), buffer_size=256 * 1024)

    def _head(self, key: str) -> dict[str, Any] | None:
        name = self._key(key)
        self.ensure_bucket()
        try:
            return dict(self._client.head_object(Bucket=self.bucket, Key=name))
        except ClientError as exc:
            if _code(exc) in _MISSING_KEY:
                return None
            self._fail(exc, key)
        except BotoCoreError as exc:
            self._fail(exc, key)

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise NotFound(f"no object {key!r}")
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def delete(self, key: str) -> None:
        name = self._key(key)
        self.ensure_bucket()
        try:
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _code(exc) not in _MISSING_KEY:
                self._fail(exc, key)
        except BotoCoreError as exc:
            self._fail(exc, key)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under ``prefix`` in lexicographic order.

        Pages through ``ListObjectsV2`` and sorts here: S3 promises UTF-8 byte order, but
        not every S3-compatible server keeps it (SeaweedFS lists ``a/b`` before ``a.b``),
        so all keys under ``prefix`` are held in memory once (~100 bytes each).
        """
        self.ensure_bucket()
        paginator = self._client.get_paginator("list_objects_v2")
        start = len(self.prefix)
        keys: list[str] = []
        try:
            pages = paginator.paginate(
                Bucket=self.bucket,
                Prefix=self.prefix + prefix,
                PaginationConfig={"PageSize": self._page_size},
            )
            for page in pages:
                keys.extend(item["Key"][start:] for item in page.get("Contents", ()))
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc)
        keys.sort()
        return iter(keys)

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None

    def ping(self) -> None:
        """Raise BackendUnavailable unless the bucket is reachable with our credentials."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                # not created yet: reachable, and the first write creates it
                return
            raise BackendUnavailable(
                f"S3 bucket {self.bucket!r} not usable at {self._where()}: "
                f"{_code(exc) or _status(exc)}"
            ) from exc
        except (BotoCoreError, ValueError) as exc:
            raise BackendUnavailable(f"S3 unreachable at {self._where()}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
