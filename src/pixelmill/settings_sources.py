"""The ``sources`` branch of the settings tree (:class:`pixelmill.settings.Settings`):
rendering images that are not stored in pixelmill, fetched by URL from ``http(s)://``
servers or ``s3://`` buckets (as imgproxy and thumbor do). Off by default; when on, only
the hosts and buckets listed here are fetched (``PIXELMILL_SOURCES__ALLOWED_HOSTS='["img.example.org"]'``,
``sources:`` in the config file)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SourcesSettings(BaseModel):
    """Remote sources for ``GET /v1/sources/render``; every limit applies per fetch."""

    enabled: bool = Field(False, description="Render images fetched by URL (off by default).")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names a URL may name: exact ('img.example.org') or a suffix "
        "pattern ('*.example.org' matches sub-domains only). Empty: no http(s) source.",
    )
    allowed_buckets: list[str] = Field(
        default_factory=list,
        description="S3 buckets an s3://BUCKET/KEY URL may name (read with the storage "
        "section's S3 endpoint and credentials). Empty: no S3 source.",
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs fetched even though they are private, loopback or link-local "
        "(an on-premises image server: '10.1.2.0/24'). Empty: only public addresses.",
    )
    https_only: bool = Field(False, description="Refuse plain http:// sources.")
    max_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest source fetched, in bytes (streamed)."
    )
    timeout_s: float = Field(10.0, gt=0, description="Wall-clock limit of one fetch.")
    max_redirects: int = Field(3, ge=0, description="Redirects followed, each checked again.")
    cache_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="Fetched sources kept in memory, keyed on the URL (0: none).",
    )
    cache_ttl_s: int = Field(600, ge=0, description="How long a fetched source is reused.")
