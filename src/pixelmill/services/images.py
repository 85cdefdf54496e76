"""The image service: ingest uploads and render them. Used by the gateway (sync path)
and by workers (job results), wired to storage, metadata and cache by the runtime."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelmill.backends.cache.base import Cache
from pixelmill.backends.metadata.image_delete import delete_image
from pixelmill.backends.metadata.images import ImageRepository
from pixelmill.backends.metadata.records import ImageRecord
from pixelmill.backends.storage.base import Storage
from pixelmill.errors import CorruptImage, NotFound, QuotaExceeded
from pixelmill.imaging import encode as encoding
from pixelmill.imaging import ops, pipeline
from pixelmill.imaging import placeholder as placeholders
from pixelmill.imaging.formats import ImageFormat
from pixelmill.imaging.intermediates import Intermediates, rendered
from pixelmill.imaging.ops import OpContext, Step
from pixelmill.imaging.pixels import to_display
from pixelmill.imaging.probe import ImageInfo, ImageSource, probe
from pixelmill.imaging.render import (
    RenderParams,
    cache_key,
    output_format,
    to_steps,
)
from pixelmill.observability import metrics, tracing
from pixelmill.services.image_pages import animated, pages_to_read, slide_steps
from pixelmill.services.image_types import Rendition, StoredQuota, new_image_id, sha256_file
from pixelmill.services.intermediates import IntermediateCache
from pixelmill.services.record_cache import RecordCache
from pixelmill.services.render_gate import RenderGate, RenderGuard
from pixelmill.settings import RenderSettings

if TYPE_CHECKING:
    import pyvips

log = logging.getLogger(__name__)

PLACEHOLDER_VERSION = "1"  # bump when placeholders change: cached ones are made again


def _no_span(name: str) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


class ImageService:
    def __init__(
        self,
        *,
        storage: Storage,
        images: ImageRepository,
        cache: Cache,
        render: RenderSettings,
        cache_ttl: int = 86400,
        allow_avif_auto: bool = False,
        resolve_model: Callable[[str], Any] | None = None,
        quotas: StoredQuota | None = None,
        detect_faces: Callable[[Any], Any] | None = None,
    ) -> None:
        self.storage = storage
        self.images = images
        self.cache = cache
        # spans for the cache only when it is a server (Redis): one in memory is too
        # quick to be worth a span's cost (docs/benchmarks.md, "Observability")
        self._cache_span = tracing.stage if not getattr(cache, "in_process", False) else _no_span
        self.settings = render
        self.cache_ttl = cache_ttl
        self.allow_avif_auto = allow_avif_auto
        #: model reference -> predictor, for the ``segment`` operation (None: no models)
        self.resolve_model = resolve_model
        #: RGB array -> face boxes (gravity=face, blur_faces, the faces job); None: none
        self.detect_faces = detect_faces
        #: owners' storage quotas, checked where each new image row is inserted
        self.quotas = quotas
        self._records = RecordCache()
        #: decoded originals of hot images, shared by their renders (render_steps)
        self.intermediates = IntermediateCache(render.intermediate_cache_bytes)
        #: renders computed at once, and a bounded queue of waiting ones (render_gate)
        self.render_gate = RenderGate(
            render.max_concurrent or os.cpu_count() or 1,
            render.max_queue,
            render.queue_timeout_s,
        )

    # -- ingest -------------------------------------------------------------------------
    def ingest_file(
        self,
        path: Path,
        *,
        filename: str | None = None,
        sha256: str | None = None,
        source: str = "upload",
        job_id: str | None = None,
        owner_id: str = "",
    ) -> tuple[ImageRecord, bool]:
        """Store the image at ``path`` (a temp file the caller owns) as ``owner_id``'s.

        Probes and fully verifies it first; nothing is written for bad input. Returns
        ``(record, created)``; the owner re-ingesting the same bytes gets the existing
        record; another owner gets a new handle of their own (the bytes are stored once).
        """
        digest = sha256 or sha256_file(path)
        existing = self.images.find_by_sha256(digest, owner_id)
        if existing is not None:
            return existing, False
        limits = self.settings  # whole slides may pass max_pixels (a pyramid)
        info = probe(path, max_pixels=limits.max_pixels, max_slide_pixels=limits.max_slide_pixels)
        return self._store(
            info, digest, path.stat().st_size, filename, source, job_id, path, owner_id
        )

    def ingest_bytes(
        self,
        data: bytes,
        *,
        filename: str | None = None,
        source: str = "upload",
        job_id: str | None = None,
        owner_id: str = "",
        verify: bool = True,
        info: ImageInfo | None = None,
    ) -> tuple[ImageRecord, bool]:
        """As :meth:`ingest_file`; ``verify=False`` skips decoding the pixels (for bytes
        pixelmill encoded itself, such as a predicted mask): the header is still read.
        ``info``, for bytes pixelmill encoded itself and knows the description of (a
        predicted mask's PNG), is taken as it is: nothing is read back, and the owner's
        row for the same bytes is not looked up first: such bytes are small, new far
        more often than not, and the insert finds a duplicate itself (the object is then
        written again with the bytes it has)."""
        digest = hashlib.sha256(data).hexdigest()
        if info is None:
            existing = self.images.find_by_sha256(digest, owner_id)
            if existing is not None:
                return existing, False
            limits = self.settings  # whole slides may pass max_pixels (a pyramid)
            info = probe(
                data,
                max_pixels=limits.max_pixels,
                max_slide_pixels=limits.max_slide_pixels,
                verify=verify,
            )
        return self._store(info, digest, len(data), filename, source, job_id, data, owner_id)

    def _store(
        self,
        info: ImageInfo,
        digest: str,
        size: int,
        filename: str | None,
        source: str,
        job_id: str | None,
        content: Path | bytes,
        owner_id: str,
    ) -> tuple[ImageRecord, bool]:
        key = f"originals/{digest[:2]}/{digest}"
        if isinstance(content, Path):
            self.storage.put_file(key, content, content_type=info.format.mime)
        else:
            self.storage.put(key, content, content_type=info.format.mime)
        limit = self.quotas.stored_limit(owner_id) if self.quotas is not None else None
        try:
            record, created = self.images.add(
                max_stored_bytes=limit,
                id=new_image_id(),
                sha256=digest,
                **info.columns(),
                size_bytes=size,
                filename=(filename or None) and filename[-512:],
                exif=info.exif,
                source=source,
                job_id=job_id,
                owner_id=owner_id,
            )
        except BaseException as exc:
            # no row, no object: never leave half an upload behind
            if not self.images.stored(digest):
                self.storage.delete(key)
            if isinstance(exc, QuotaExceeded) and self.quotas is not None:
                self.quotas.denied(owner_id, exc)
            raise
        if created:  # its first render or prediction, often the next request, needs no query
            self._records.put(record)
        return record, created

    # -- read ---------------------------------------------------------------------------
    def source_of(self, record: ImageRecord) -> ImageSource:
        """The original as a local path when storage has one (zero-copy), else bytes
        (traced as ``render.fetch``: a local path is no I/O yet)."""
        path = self.storage.local_path(record.storage_key)
        if path is not None:
            return path
        with tracing.stage("render.fetch"):
            return self.storage.get(record.storage_key)

    def original_bytes(self, image_id: str) -> bytes:
        return self.storage.get(self.images.get(image_id).storage_key)

    def record(self, image_id: str) -> ImageRecord:
        """The image's record for rendering, from a short-lived in-process LRU."""
        record = self._records.get(image_id)
        if record is None:
            record = self.images.get(image_id)
            self._records.put(record)
        return record

    def delete(self, image_id: str) -> list[ImageRecord]:
        """Delete the image and what its studies derived from it: the rows in one
        transaction (:func:`~pixelmill.backends.metadata.image_delete.delete_image`),
        then their objects; returns the deleted records (the image, then its overlays)."""
        gone = delete_image(self.images.db, image_id)
        records = [gone.record, *gone.derived]
        for record in records:
            self._records.drop(record.id)
        # other owners' handles keep the bytes; the artifacts are the analyses' per image
        keys = [r.storage_key for r in records if not self.images.stored(r.sha256)]
        for key in keys + gone.artifact_keys:
            try:
                self.storage.delete(key)
            except Exception as exc:  # the rows are gone: a leftover object is unreachable
                log.warning("image %s deleted; object %s remains: %s", image_id, key, exc)
        return records

    # -- render -------------------------------------------------------------------------
    def plan(
        self, record: ImageRecord, params: RenderParams, accept: str | None
    ) -> tuple[ImageFormat, int, str, bool]:
        """Output format, quality, cache key and whether the format was negotiated."""
        fmt = output_format(params, ImageFormat(record.format), animated=animated(record))
        negotiated = fmt == "auto"
        if fmt == "auto":
            fmt = encoding.negotiate(
                accept, has_alpha=record.bands in (2, 4), allow_avif=self.allow_avif_auto
            )
        quality = params.q or self.settings.quality.get(fmt.value) or self.settings.default_quality
        return fmt, quality, cache_key(record.id, params, fmt, quality), negotiated

    def render(self, image_id: str, params: RenderParams, accept: str | None = None) -> Rendition:
        return self.render_record(self.record(image_id), params, accept)

    def render_record(
        self,
        record: ImageRecord,
        params: RenderParams,
        accept: str | None = None,
        plan: tuple[ImageFormat, int, str, bool] | None = None,
        gone: Callable[[], bool] | None = None,
    ) -> Rendition:
        """Render ``record`` (from the cache when possible); ``plan`` is :meth:`plan`'s
        answer when the caller already has it. A miss is :meth:`compute`d. Traced in the
        stages ``render.cache.get``, ``render.fetch``, ``render.decode_ops``,
        ``render.encode`` and ``render.cache.set`` (libvips is lazy: most time lands in
        ``render.encode``); the cache stages for a cache server only, the fetch for object
        storage without local paths (S3)."""
        plan = plan or self.plan(record, params, accept)
        return self.cached(plan) or self.compute(record, params, plan, gone)

    def cached(self, plan: tuple[ImageFormat, int, str, bool]) -> Rendition | None:
        """The rendition of ``plan`` from the result cache, or ``None`` (a miss)."""
        fmt, _quality, key, negotiated = plan
        with self._cache_span("render.cache.get"):
            body = self.cache.get(key)
        if body is None:
            metrics.CACHE_REQUESTS.labels("miss").inc()
            return None
        metrics.CACHE_REQUESTS.labels("hit").inc()
        return Rendition(body, fmt.mime, f'"{key[:40]}"', negotiated, True)

    def compute(
        self,
        record: ImageRecord,
        params: RenderParams,
        plan: tuple[ImageFormat, int, str, bool],
        gone: Callable[[], bool] | None = None,
        source: Callable[[], ImageSource] | None = None,
    ) -> Rendition:
        """Render ``plan`` of ``record`` and cache it: waits for a render slot and
        computes within ``render.time_budget_s``; ``gone()`` tells that the client left
        (then a waiting render never starts and a running one stops). ``source`` gives
        the bytes of an image that is not in storage (a remote source)."""
        fmt, quality, key, negotiated = plan
        etag = f'"{key[:40]}"'
        steps = to_steps(params, max_side=self.settings.max_output_side)
        guard = RenderGuard(self.settings.time_budget_s, gone)
        original = source() if source is not None else None  # fetched outside a slot
        try:
            with self.render_gate.slot(gone):
                started = time.perf_counter()
                body = self.render_steps(
                    record, steps, fmt, quality, params=params, stop=guard, source=original
                )
        except CorruptImage as exc:
            stopped = guard.error()
            if stopped is not None:  # we stopped libvips: not the image's fault
                raise stopped from exc
            if source is not None:  # not a stored image: nothing to look up
                raise
            # a record served from the LRU may belong to an image another process deleted
            self._records.drop(record.id)
            self.images.get(record.id)  # raises NotFound when it is gone
            raise
        elapsed = time.perf_counter() - started
        for name in {s.op.name for s in steps} or {"encode"}:
            metrics.RENDER_SECONDS.labels(name).observe(elapsed)
        with self._cache_span("render.cache.set"):
            self.cache.set(key, body, ttl=self.cache_ttl)
        return Rendition(body, fmt.mime, etag, negotiated, False)

    def render_steps(
        self,
        record: ImageRecord,
        steps: Sequence[Step],
        fmt: ImageFormat,
        quality: int,
        *,
        params: RenderParams | None = None,
        ctx: OpContext | None = None,
        stop: Callable[[], bool] | None = None,
        source: ImageSource | None = None,
    ) -> bytes:
        """Run ``steps`` on the original (``source``, else from storage) and encode;
        ``params`` carries the render's output choices (metadata, colour profile,
        background, bit depth)."""
        p = params or RenderParams()
        ctx = ctx or self.context(record)
        ctx.keep_16_bit = p.depth == 16 and fmt in (ImageFormat.PNG, ImageFormat.TIFF)
        steps = slide_steps(record, p, steps, self.settings)  # a slide: a reduced level
        pages = pages_to_read(record, p, fmt, self.settings)
        kept: Intermediates | None = None
        recipe = ""
        if source is None:  # a stored original: its decode may serve the next render
            ctx.intermediates, ctx.source_id = self.intermediates, record.sha256
            if self.intermediates.fits(1) and all(s.op.pure for s in steps):
                # and so may the steps' result: this request in another format
                kept = self.intermediates
                deep = ctx.keep_16_bit and record.bit_depth > 8  # no effect on 8 bits
                steps_json = [s.to_json() for s in steps]
                recipe = json.dumps([steps_json, p.orient, p.icc, pages, deep, ctx.pixel_size_um])

        def run() -> pyvips.Image:
            opened = self.source_of(record) if source is None else source
            return pipeline.run(opened, steps, ctx, auto_orient=p.orient, icc=p.icc, pages=pages)

        with tracing.stage("render.decode_ops", {"pixelmill.steps": len(steps)}):
            image = rendered(run, kept, record.sha256, recipe, stop)
        background = (p.bg or (255, 255, 255, 255))[:3]
        options: dict[str, Any] = {
            "strip": p.strip,
            "keep_icc": p.icc == "keep",
            "background": (background[0], background[1], background[2]),
            "depth": p.depth,
            "progressive": p.progressive,
            "lossless": p.lossless,
            "stop": stop,
        }
        with tracing.stage("render.encode", {"pixelmill.format": fmt.value}):
            if p.max_bytes is not None:
                return encoding.encode_within(
                    image, fmt, max_bytes=p.max_bytes, quality=quality, **options
                )
            return encoding.encode(image, fmt, quality=quality, **options)

    def placeholder(self, record: ImageRecord) -> dict[str, str]:
        """The image's BlurHash and LQIP data URI, made once per stored original (cached
        under its sha256, so every handle of the same bytes shares it)."""
        key = f"placeholder:{PLACEHOLDER_VERSION}:{record.sha256}"
        cached = self.cache.get(key)
        if cached is not None:
            return dict(json.loads(cached))
        step = ops.parse_step({"op": "resize", "width": 32, "height": 32, "fit": "inside"})
        with self.render_gate.slot(None):
            small = pipeline.run(self.source_of(record), [step], self.context(record))
            found = placeholders.placeholders_of(to_display(small))
        self.cache.set(key, json.dumps(found).encode(), ttl=self.cache_ttl)
        return found

    def context(self, record: ImageRecord | None = None) -> OpContext:
        return OpContext(
            load_image=self._load_for_op,
            resolve_model=self.resolve_model,
            detect_faces=self.detect_faces,
            pixel_size_um=record.pixel_size_um if record else None,
        )

    def _load_for_op(self, image_id: str) -> bytes:
        try:
            return self.original_bytes(image_id)
        except NotFound:
            # worded as every other unknown or unreadable image: no existence oracle
            raise NotFound(f"no image {image_id!r}") from None
