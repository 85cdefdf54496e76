"""The one exception tree of pixelmill.

Every error pixelmill raises on purpose is a :class:`PixelmillError`. Each class knows
the HTTP status it maps to and a short problem ``type`` slug, so the HTTP edge turns any
of them into an RFC 9457 ``application/problem+json`` body without a lookup table.
Vendor errors (libvips, boto3, SQLAlchemy, pika, ...) are translated into these at the
adapter boundary; they never leak to callers.

::

    PixelmillError (500)
    ├── InvalidInput (400)
    │   ├── InvalidParameter (422)      render/pipeline parameter out of range, unknown op
    │   ├── UnsupportedFormat (415)     bytes are not an image format we read
    │   ├── CorruptImage (422)          truncated or undecodable image data
    │   ├── EmptyInput (400)
    │   ├── InvalidDataset (422)        training data fails validation; names the files
    │   ├── InvalidModel (422)          an ONNX model we refuse to load or that cannot run
    │   ├── InvalidAnnotation (422)     GeoJSON we refuse; names the feature and the problem
    │   ├── ImageTooLarge (413)         pixel limit (decompression bomb) or byte limit
    │   └── BodyTooLarge (413)          a JSON request body over its cap
    ├── AuthError (401)
    │   └── Forbidden (403)
    │       ├── BadSignature (403)
    │       └── SourceRefused (403)     a remote source URL outside the allow-lists
    ├── NotFound (404)
    ├── Conflict (409)
    ├── RateLimited (429)               a client over its request budget, carries retry_after
    ├── QuotaExceeded (403)             a user's quota (stored bytes, training minutes) is used up
    │   ├── JobQuotaExceeded (429)      at the concurrent-jobs limit, carries retry_after
    │   └── EpochQuotaExceeded (422)    a training run asks more epochs than the user's cap
    ├── ClientClosed (499)              the client went away before its work started
    ├── Overloaded (503)                backpressure, carries retry_after seconds
    │   └── RenderTimeout (503)         a render past its time budget
    ├── BackendUnavailable (503)        storage / database / cache / broker unreachable
    ├── SourceUnavailable (502)         a remote source answered an error or not at all
    │   └── SourceTimeout (504)         a remote source slower than its time limit
    └── StorageError (500)

Keyword arguments of an error are the problem's extension members (``max_pixels=...``,
``files=[...]``). They can never replace the members RFC 9457 defines (``type``,
``title``, ``status``, ``detail``, ``instance``): naming one, or a name RFC 9457 advises
against (not ASCII letters, digits and ``_`` starting with a letter, or shorter than 3
characters), is a ``TypeError`` where the error is raised, so a client can always trust
``status`` and ``type``.

The ``detail`` of a 4xx error is written for the client and never carries library text
or server paths; the library's words go in the ``__cause__`` (``raise ... from exc``),
which the HTTP edge logs with the request id. Errors whose detail is about the server
(``public_detail = False``: storage, backends, internal) are answered with their title
only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_BASE = "https://pixelmill.dev/problems/"

#: the members RFC 9457 defines; an error's extension members never replace them
PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})

#: RFC 9457 section 3.2: extension names start with a letter, are ASCII letters, digits
#: and underscores, and at least three characters long (usable as identifiers anywhere)
_EXTENSION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}")


def _check_extensions(extra: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` unless every key of ``extra`` may be a problem extension member."""
    for name in extra:
        if name in PROBLEM_MEMBERS:
            raise TypeError(
                f"{name!r} is a member RFC 9457 defines; an error sets it from its class "
                "(status, type, title) or its message (detail), not from a keyword"
            )
        if not _EXTENSION_NAME.fullmatch(name):
            raise TypeError(
                f"problem extension member {name!r} must start with a letter and be at "
                "least 3 ASCII letters, digits or underscores (RFC 9457 section 3.2)"
            )


class PixelmillError(Exception):
    """Base of every pixelmill error. ``status`` is the HTTP status at the edge."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal error"
    #: whether ``detail`` may be shown to the client (else only logged)
    public_detail: bool = True
    #: whether the fault is a remote party's (a source's origin), not pixelmill's: the
    #: HTTP edge logs it at WARNING, so a third party's outage raises no error alert
    remote: bool = False

    def __init__(self, detail: str = "", **extra: Any) -> None:
        _check_extensions(extra)
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """This error as an RFC 9457 problem details object: the defined members from the
        class and message, then the extension members (which never replace them, even if
        ``extra`` was changed after the error was made)."""
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update((k, v) for k, v in self.extra.items() if k not in PROBLEM_MEMBERS)
        return body


class InvalidInput(PixelmillError):
    status = 400
    slug = "invalid-input"
    title = "Invalid input"


class InvalidParameter(InvalidInput):
    status = 422
    slug = "invalid-parameter"
    title = "Invalid parameter"


class UnsupportedFormat(InvalidInput):
    status = 415
    slug = "unsupported-format"
    title = "Unsupported image format"


class CorruptImage(InvalidInput):
    status = 422
    slug = "corrupt-image"
    title = "Corrupt or truncated image"


class EmptyInput(InvalidInput):
    status = 400
    slug = "empty-input"
    title = "Empty input"


class InvalidDataset(InvalidInput):
    """A dataset failed validation. ``extra["files"]`` lists ``{"file", "problem"}``."""

    status = 422
    slug = "invalid-dataset"
    title = "Invalid dataset"


class InvalidModel(InvalidInput):
    """A model is refused (unsafe, or does not fit its input spec) or failed on an
    input. ``extra["problems"]`` lists what was found; never a server path."""

    status = 422
    slug = "invalid-model"
    title = "Invalid model"


class InvalidAnnotation(InvalidInput):
    """GeoJSON annotations we refuse. ``extra["feature"]`` is the index of the offending
    feature (when one is to blame) and ``extra["problem"]`` a short machine-readable slug
    (``unclosed-ring``, ``out-of-bounds``, ``too-many-vertices``, ...)."""

    status = 422
    slug = "invalid-annotation"
    title = "Invalid annotation"


class ImageTooLarge(InvalidInput):
    status = 413
    slug = "too-large"
    title = "Image too large"


class BodyTooLarge(InvalidInput):
    status = 413
    slug = "body-too-large"
    title = "Request body too large"


class AuthError(PixelmillError):
    status = 401
    slug = "unauthorized"
    title = "Missing or invalid API key"


class Forbidden(AuthError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class BadSignature(Forbidden):
    status = 403
    slug = "bad-signature"
    title = "Bad or missing URL signature"


class SourceRefused(Forbidden):
    """A remote source URL pixelmill will not fetch: a scheme, host or bucket off the
    allow-lists, or an address that is private, loopback or link-local (SSRF)."""

    status = 403
    slug = "source-refused"
    title = "Source refused"


class NotFound(PixelmillError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(PixelmillError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(PixelmillError):
    """A write carried a version (``If-Match``) that is no longer the current one."""

    status = 412
    slug = "precondition-failed"
    title = "The resource changed since you read it"


class PreconditionRequired(PixelmillError):
    """A write that must name the version it changes (``If-Match``) did not."""

    status = 428
    slug = "precondition-required"
    title = "If-Match required"


class RateLimited(PixelmillError):
    """Over a request budget (``ratelimit`` settings) or locked out after failed logins;
    ``retry_after`` in seconds."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str = "", *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class QuotaExceeded(PixelmillError):
    """A user's quota would be exceeded (docs/security.md, "Quotas"). Extension members:
    ``quota`` (``stored_bytes``, ``concurrent_jobs``, ``training_minutes``,
    ``max_epochs``), ``limit`` and ``used``. Every subclass shares the problem type
    ``quota-exceeded``; the status says what to do: 403 free some space or ask an admin,
    429 wait (``Retry-After``), 422 ask for less."""

    status = 403
    slug = "quota-exceeded"
    title = "Quota exceeded"


class JobQuotaExceeded(QuotaExceeded):
    """At the concurrent-jobs limit; ``retry_after`` in seconds."""

    status = 429

    def __init__(self, detail: str = "", *, retry_after: int = 30, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class EpochQuotaExceeded(QuotaExceeded):
    """A training run asks more epochs than the submitter's cap."""

    status = 422


class ClientClosed(PixelmillError):
    """The client disconnected before its work was done; nobody reads the answer."""

    status = 499
    slug = "client-closed"
    title = "Client closed the request"


class Overloaded(PixelmillError):
    status = 503
    slug = "overloaded"
    title = "Service overloaded"

    def __init__(self, detail: str = "", *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class RenderTimeout(Overloaded):
    """A render computed longer than ``render.time_budget_s`` and was stopped."""

    slug = "render-timeout"
    title = "Render time budget exceeded"


class BackendUnavailable(PixelmillError):
    """``retry_after`` (seconds, or ``None``) becomes the ``Retry-After`` header: set when
    the caller knows when to try again (an open circuit breaker)."""

    status = 503
    slug = "backend-unavailable"
    title = "A backend is unavailable"
    public_detail = False

    def __init__(self, detail: str = "", *, retry_after: int | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class SourceUnavailable(PixelmillError):
    """A remote source could not be fetched: it answered an error status, or the
    connection failed. ``detail`` names the source's answer, never library text."""

    status = 502
    slug = "source-unavailable"
    title = "Source unavailable"
    remote = True


class SourceTimeout(SourceUnavailable):
    """A remote source took longer than ``sources.timeout_s``."""

    status = 504
    slug = "source-timeout"
    title = "Source timed out"


class StorageError(PixelmillError):
    status = 500
    slug = "storage-error"
    title = "Storage error"
    public_detail = False


def missing_ids(what: str, ids: Sequence[str | int], **extra: Any) -> InvalidParameter:
    """422 for ``ids`` that are not there (``what``: "image(s) are not in this study"):
    ``missing`` lists the first 50, ``missing_count`` counts them all, and the detail
    says how many the list leaves out."""
    shown, left = list(ids[:50]), len(ids) - 50
    more = f": the first 50 are in 'missing', and {left} more" if left > 0 else ""
    detail = f"{len(ids)} {what}{more}"
    return InvalidParameter(detail, missing=shown, missing_count=len(ids), **extra)


def public_text(exc: BaseException) -> str:
    """What a client may be told about ``exc`` (in a job's or model's error field): our
    error's detail when it is written for clients, else its title or only the type's
    name. The rest belongs in the log."""
    if isinstance(exc, PixelmillError):
        return exc.detail if exc.public_detail else exc.title
    return f"internal error ({type(exc).__name__}); see the server log"


__all__ = [
    "AuthError",
    "BackendUnavailable",
    "BadSignature",
    "ClientClosed",
    "Conflict",
    "CorruptImage",
    "EmptyInput",
    "EpochQuotaExceeded",
    "Forbidden",
    "ImageTooLarge",
    "InvalidAnnotation",
    "InvalidDataset",
    "InvalidInput",
    "InvalidModel",
    "InvalidParameter",
    "JobQuotaExceeded",
    "NotFound",
    "Overloaded",
    "PixelmillError",
    "PreconditionFailed",
    "PreconditionRequired",
    "QuotaExceeded",
    "RateLimited",
    "RenderTimeout",
    "StorageError",
    "UnsupportedFormat",
    "missing_ids",
    "public_text",
]
