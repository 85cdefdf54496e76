"""The one typed settings tree.

Read once, by the composition root (:mod:`pixelmill.runtime`), from (highest first):
keyword arguments, environment variables prefixed ``PIXELMILL_`` (nested with ``__``,
e.g. ``PIXELMILL_RENDER__MAX_PIXELS``), an optional YAML/JSON config file named by
``PIXELMILL_CONFIG``, then the defaults below. No other module reads the environment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pixelmill.settings_autoscale import AutoscaleSettings
from pixelmill.settings_healing import HealingSettings
from pixelmill.settings_parts import (
    BrokerSettings,
    CacheSettings,
    DatabaseSettings,
    JobsSettings,
    MLSettings,
    QuotaSettings,
    RateLimitSettings,
    StorageSettings,
    WorkspaceSettings,
)
from pixelmill.settings_sources import SourcesSettings

__all__ = [
    "AutoscaleSettings",
    "BrokerSettings",
    "CacheSettings",
    "DatabaseSettings",
    "HealingSettings",
    "JobsSettings",
    "MLSettings",
    "ObservabilitySettings",
    "QuotaSettings",
    "RateLimitSettings",
    "RenderSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "SourcesSettings",
    "StorageSettings",
    "TracingSettings",
    "WorkspaceSettings",
]

#: output formats a per-format quality may name
ImageFormatName = Literal["jpeg", "png", "webp", "avif", "tiff", "gif"]
Quality = Annotated[int, Field(ge=1, le=100)]


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the gateway binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port of the gateway.")
    workers: int = Field(
        0,
        ge=0,
        description="Gateway worker processes; 0 means one per core (measured faster than "
        "one process with request and libvips threads, see docs/benchmarks.md). Each "
        "process has its own memory result cache of cache.max_bytes.",
    )
    max_upload_bytes: int = Field(
        200 * 1024 * 1024, gt=0, description="Uploads larger than this get 413."
    )
    max_json_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="JSON request bodies larger than this get 413, counted as they arrive "
        "(uploads of images, datasets and models have max_upload_bytes instead).",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Comma-separated addresses or networks of the proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed ('*': any peer). Empty (the "
        "default): the client is the socket's peer and these headers are ignored, so no "
        "client can pick the address that rate limits, lockouts and the audit log see.",
    )


class RenderSettings(BaseModel):
    max_pixels: int = Field(
        16383 * 16383,
        gt=0,
        description="Refuse images with more pixels (checked from the header). The default, "
        "268 MP (16383 x 16383, sharp's limitInputPixels), takes 100-200 MP camera files "
        "(11648 x 8736 = 101.8 MP): memory is not what limits a thumbnail, since "
        "shrink-on-load decodes a JPEG at 1/8 scale and other formats stream top to "
        "bottom (measured peaks: +42 MB for 101.8 MP and +57 MB for 268 MP JPEG -> 300 px, "
        "+99 MB for a 101.8 MP PNG). A full-resolution render that must turn the picture "
        "(rotate, flip without w/h) holds it decoded, ~4 bytes a pixel: lower this on "
        "small machines.",
    )
    max_slide_pixels: int = Field(
        200_000 * 200_000,
        gt=0,
        description="Tiled pyramidal TIFFs (whole slides: SVS, OME-TIFF, pyvips pyramids) "
        "up to this many pixels are taken although over max_pixels: the viewer's deep-zoom "
        "tiles read them from their reduced levels, never more than max_pixels at once.",
    )
    max_output_side: int = Field(8192, gt=0, description="Largest width/height a render may ask.")
    default_quality: int = Field(
        82, ge=1, le=100, description="Encoder quality when q is not given."
    )
    concurrency: int = Field(
        0, ge=0, description="libvips threads per render; 0 leaves libvips' default (one per core)."
    )
    max_concurrent: int = Field(
        0,
        ge=0,
        description="Renders (cache misses) computed at once per process; 0 = one per core. "
        "More wait in the queue below.",
    )
    max_queue: int = Field(
        32,
        ge=0,
        description="Renders waiting for a slot per process; one more gets 503 with "
        "Retry-After (imgproxy's requests queue).",
    )
    queue_timeout_s: float = Field(
        20.0, gt=0, description="Longest wait for a render slot before 503 with Retry-After."
    )
    time_budget_s: float = Field(
        30.0,
        ge=0,
        description="Wall time one on-the-fly render may compute; past it libvips stops and "
        "the answer is 503 (render-timeout). 0: no budget.",
    )
    quality: dict[ImageFormatName, Quality] = Field(
        default_factory=dict,
        description="Encoder quality per output format when q is not given, e.g. "
        "{avif: 60, webp: 80}; formats not named use default_quality.",
    )
    presets: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Named render parameter sets, used as preset=NAME (several: "
        "preset=a,b) and combinable with other parameters, which win: "
        "{thumb: {w: 256, h: 256, fit: cover}}.",
    )
    intermediate_cache_bytes: int = Field(
        128 * 1024 * 1024,
        ge=0,
        description="Bytes of decoded originals each process keeps for the next render of "
        "the same image (shrink-on-load JPEGs, whole PNG/TIFF/GIF, animation frames), and of "
        "the results of pure steps for the same request in another format (LRU): a CDN asks "
        "for each hot image in several sizes and formats. 0: decode every time.",
    )
    max_frames: int = Field(200, ge=1, description="Most frames an animated render keeps.")
    max_animation_pixels: int = Field(
        100_000_000, gt=0, description="Most source pixels (frames x w x h) it may read."
    )


class SecuritySettings(BaseModel):
    public_read: bool = Field(
        False,
        description="Let anyone render any image without a key: sized (at most 2048 px), "
        "stripped, uncropped renders only; never lists, metadata or originals. Off: "
        "anonymous renders need a signed URL or a study that opts in (public_renders).",
    )
    signing_key: str | None = Field(
        None,
        description="HMAC-SHA256 key for signed render URLs. When set, unsigned renders are refused.",
    )
    signing_keys: dict[str, str] = Field(
        default_factory=dict,
        description="More signing keys by id, for rotation: a URL with kid=ID is checked with "
        "that key (pixelmill sign --key-id ID). When any key is set, unsigned renders are "
        "refused.",
    )
    thumbor_key: str | None = Field(
        None,
        description="HMAC-SHA1 key (thumbor's SECURITY_KEY) for thumbor-style signed URLs "
        "/<signature>/<options>/<image id>; unset: those URLs are refused.",
    )
    thumbor_allow_unsafe: bool = Field(
        False,
        description="Serve thumbor /unsafe/ URLs (thumbor's ALLOW_UNSAFE_URL), and then only "
        "to callers with an API key or a login.",
    )
    auth_enabled: bool = Field(True, description="Require API keys for writes.")
    key_cache_s: float = Field(
        2.0,
        ge=0,
        description="Seconds a gateway process reuses a successful API-key check. A key "
        "revoked in another process (the CLI, another gateway) stops working within this "
        "time; one revoked in the same process at once. 0: look the key up on every request.",
    )


class TracingSettings(BaseModel):
    """OpenTelemetry traces (docs/operations.md, "Tracing"); off by default."""

    exporter: Literal["none", "otlp", "memory"] = Field("none", description="none|otlp|memory")
    endpoint: str = Field("http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP URL.")
    protocol: Literal["http/json", "http/protobuf"] = Field(
        "http/json",
        description="OTLP/HTTP encoding: JSON costs a quarter of protobuf's CPU per span.",
    )
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0, description="Share of new traces kept.")
    service_name: str = Field("pixelmill", description="service.name of every span.")


class ObservabilitySettings(BaseModel):
    log_level: str = Field(
        "INFO",
        pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        description="Python log level of every process: DEBUG, INFO, WARNING, ERROR or "
        "CRITICAL (any case). `pixelmill up` shows WARNING and above unless --verbose.",
    )
    metrics_enabled: bool = Field(
        True,
        description="Serve Prometheus metrics at /metrics; false answers 404 there (for a "
        "gateway reachable from outside with no scraper in front).",
    )
    metrics_token: str | None = Field(
        None,
        description="When set, /metrics answers only requests with 'Authorization: Bearer "
        "TOKEN' (the scraper's). Production must set it or keep /metrics off the public port.",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="'auto': text on a terminal, JSON lines otherwise."
    )
    access_log: bool = Field(False, description="An INFO line per request (else DEBUG).")
    tracing: TracingSettings = TracingSettings()
    health_host: str = Field("127.0.0.1", description="A job worker's health endpoint host.")
    health_port: int = Field(
        0, ge=0, le=65535, description="Its port (/livez, /readyz, /metrics); 0: off."
    )


def _config_file_source() -> dict[str, Any]:
    # The config file is named by the environment; this is the settings tree itself
    # reading it, which is the one place allowed to.
    path = os.environ.get("PIXELMILL_CONFIG")
    if not path:
        return {}
    text = Path(path).read_text()
    data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    return dict(data or {})


class _FileSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _config_file_source()


class Settings(BaseSettings):
    """Everything pixelmill can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="PIXELMILL_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(
        Path("pixelmill-data"), description="Where embedded mode keeps its DB, objects and keys."
    )
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    database: DatabaseSettings = DatabaseSettings()
    cache: CacheSettings = CacheSettings()
    render: RenderSettings = RenderSettings()
    security: SecuritySettings = SecuritySettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    broker: BrokerSettings = BrokerSettings()
    ml: MLSettings = MLSettings()
    jobs: JobsSettings = JobsSettings()
    workspace: WorkspaceSettings = WorkspaceSettings()
    quota: QuotaSettings = QuotaSettings()
    healing: HealingSettings = HealingSettings()
    sources: SourcesSettings = SourcesSettings()
    autoscale: AutoscaleSettings = AutoscaleSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir.resolve() / 'pixelmill.db'}"

    @property
    def storage_url(self) -> str:
        return self.storage.url or f"file://{self.data_dir.resolve() / 'objects'}"
