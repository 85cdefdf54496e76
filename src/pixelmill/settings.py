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


class StorageSettings(BaseModel):
    url: str = Field(
        "",
        description="Object storage: '' or 'file://DIR' (local folder, default "
        "DATA_DIR/objects), 'memory://', or 's3://BUCKET' (with the s3 settings below).",
    )
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint, e.g. http://127.0.0.1:8333")
    s3_region: str = Field("us-east-1", description="S3 region name.")
    s3_access_key: str | None = Field(None, description="S3 access key id.")
    s3_secret_key: str | None = Field(None, description="S3 secret access key.")
    s3_prefix: str = Field("", description="Key prefix inside the bucket.")


class DatabaseSettings(BaseModel):
    url: str = Field(
        "",
        description="SQLAlchemy URL of the metadata DB: '' means sqlite in DATA_DIR; "
        "'postgresql+psycopg://user@host/db' for distributed mode; 'sqlite://' in memory.",
    )
    echo: bool = Field(False, description="Log every SQL statement.")
    pool_size: int = Field(
        20,
        ge=1,
        description="PostgreSQL connections each process keeps open (per engine). Beyond "
        "this many concurrent users, up to 20 more connect and disconnect per use — a "
        "server backend start each time — so size it to the process's threads.",
    )


class CacheSettings(BaseModel):
    url: str = Field(
        "memory://",
        description="Result cache: 'memory://' (per-process LRU), 'redis://host:6379/0', "
        "or 'none://' to disable.",
    )
    max_bytes: int = Field(256 * 1024 * 1024, gt=0, description="Memory LRU bound in bytes.")
    ttl_seconds: int = Field(24 * 3600, gt=0, description="Entry lifetime in the cache.")
    http_max_age: int = Field(
        31536000, ge=0, description="Cache-Control max-age of rendered images (seconds)."
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


class RateLimitSettings(BaseModel):
    """Request budgets per API key (or session) and per client IP (docs/security.md)."""

    enabled: bool = Field(True, description="Refuse clients over budget with 429.")
    storage_url: str = Field(
        "",
        description="Where budgets are counted: 'memory://' (per process), 'redis://host:6379/0' "
        "(shared by every gateway). '' means the cache's Redis when cache.url is redis://, "
        "else memory://.",
    )
    window_s: int = Field(60, ge=1, description="Length of the budget window, seconds.")
    per_key: int = Field(
        20000, ge=1, description="Cost units one API key or session may spend per window."
    )
    per_ip: int = Field(
        5000,
        ge=1,
        description="Cost units one client address may spend per window without credentials; "
        "failed authentications are charged here too.",
    )
    cost_other: int = Field(1, ge=0, description="Cost of a request of no class below.")
    cost_render: int = Field(4, ge=0, description="Cost of a render or a prediction.")
    cost_upload: int = Field(
        10, ge=0, description="Cost of an upload (image, dataset, model version)."
    )
    cost_job_submit: int = Field(10, ge=0, description="Cost of a job submission.")
    cost_auth_failure: int = Field(
        250,
        ge=0,
        description="Charged to a client address for each 401 to a request with credentials, "
        "from a failure budget of per_ip units; while the address cannot afford another "
        "failure, its requests with credentials are refused (lockout until the window "
        "moves on). 0: no lockout.",
    )


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


class BrokerSettings(BaseModel):
    url: str = Field(
        "memory://",
        description="Job broker: 'memory://' (in-process, embedded) or 'amqp://guest:guest@127.0.0.1:5672/'.",
    )
    namespace: str = Field(
        "pixelmill",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="Prefix of the RabbitMQ queue names ('NAMESPACE.transform', ...).",
    )
    max_retries: int = Field(5, ge=0, description="Retries of a task whose run raised.")
    min_backoff_s: float = Field(
        0.5, gt=0, description="First retry delay; doubles per retry (with jitter)."
    )
    max_backoff_s: float = Field(30.0, gt=0, description="Longest retry delay.")
    delivery_limit: int = Field(
        5,
        ge=1,
        description="Deliveries of a message whose worker died mid-run before it is "
        "dead-lettered (RabbitMQ x-delivery-limit on quorum queues).",
    )
    confirm_publish: bool = Field(True, description="Wait for publisher confirms on enqueue.")


class JobsSettings(BaseModel):
    embedded_threads: int = Field(
        2, ge=0, description="In-process job threads of an embedded gateway (0: none)."
    )
    worker_threads: int = Field(4, ge=1, description="Task threads per `pixelmill worker`.")
    max_inputs: int = Field(1000, ge=1, description="Most input images of one job.")
    max_queued_tasks: int = Field(
        10000,
        ge=1,
        description="Backpressure: above this many waiting tasks in a queue, submits get "
        "503 with Retry-After.",
    )
    retry_after_s: int = Field(5, ge=1, description="Retry-After sent with backpressure 503s.")
    step_time_limit_s: float = Field(
        300.0, gt=0, description="Time limit of one pipeline step (and the final encode)."
    )
    task_time_limit_s: float = Field(
        3600.0, gt=0, description="Time limit of one task run unless its job kind sets one."
    )
    republish_after_s: float = Field(
        10.0,
        gt=0,
        description="Workers re-publish queued tasks not handed to the broker after this long "
        "(their submitter died or the broker was down).",
    )
    sweep_interval_s: float = Field(5.0, gt=0, description="How often workers look for those.")
    events_poll_s: float = Field(
        0.25,
        gt=0,
        description="How often the SSE endpoint polls for new job events without notifications.",
    )
    events_notify: bool = Field(
        True,
        description="On PostgreSQL, event streams wake on LISTEN/NOTIFY instead of polling. "
        "Turn off behind a pooler that cannot LISTEN (PgBouncer in transaction mode).",
    )
    plugins: list[str] = Field(
        default_factory=list, description="Modules to import that register extra job kinds."
    )
    retention_days: float = Field(
        30.0,
        ge=0,
        description="Finished jobs (succeeded, failed, cancelled) older than this many days "
        "are deleted with their tasks, events and artifacts; result images stay. 0 keeps "
        "jobs forever.",
    )
    retention_interval_s: float = Field(
        600.0,
        gt=0,
        description="How often each job worker (and embedded gateway) deletes one batch of "
        "expired jobs; while a backlog remains, the next batch follows after 1 s.",
    )
    retention_batch: int = Field(
        200, ge=1, le=10000, description="Expired jobs deleted per batch (one transaction)."
    )


class MLSettings(BaseModel):
    """Training, the model registry and serving (docs/ml.md)."""

    inference_threads: int = Field(
        0, ge=0, description="ONNX Runtime intra-op threads per loaded model; 0 = one per core."
    )
    batching: bool = Field(True, description="Dynamic batching of concurrent predictions.")
    max_batch: int = Field(8, ge=1, le=256, description="Largest batch (images or tiles).")
    max_batch_pixels: int = Field(
        3 * 256 * 256,  # = pixelmill.ml.batching.BATCH_PIXELS (settings import no numpy)
        ge=1,
        description="Largest total of pixels in one batch (3 x 256 x 256): a bigger batch "
        "spills the CPU caches and runs slower per image than one at a time.",
    )
    max_wait_ms: float = Field(
        5.0, ge=0, le=1000, description="Longest wait for a batch to fill, milliseconds."
    )
    tile_size: int = Field(
        1024,
        ge=0,
        le=8192,
        description="Largest side run in one pass; larger images are tiled (0 = the model's "
        "training tile). Whole-image passes are faster and seamless; tiles bound memory.",
    )
    tile_overlap: int = Field(
        64, ge=0, le=1024, description="Overlap of tiles for images larger than the model's tile."
    )
    loaded_models: int = Field(
        4, ge=1, le=64, description="Model versions kept loaded (least recently used evicted)."
    )
    max_predict_pixels: int = Field(
        64_000_000, gt=0, description="Largest image (pixels) a prediction accepts."
    )
    drift_window: int = Field(200, ge=1, description="Served images in the drift window.")
    drift_min_samples: int = Field(20, ge=1, description="Images before drift can be flagged.")
    drift_threshold: float = Field(
        0.25, gt=0, description="PSI above which drift is flagged (0.1 moderate, 0.25 major)."
    )
    default_model: bool = Field(
        True, description="Register the shipped 'nuclei' model as nuclei@production at start."
    )
    max_dataset_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest dataset archive accepted, bytes."
    )
    train_threads: int = Field(0, ge=0, description="torch threads for training; 0 = cores.")


class WorkspaceSettings(BaseModel):
    """Users, browser sessions and the research workspace."""

    session_ttl_s: int = Field(
        8 * 3600,
        ge=60,
        description="A browser session ends after this many seconds without a request "
        "(sliding expiry).",
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Mark the session cookie Secure: 'auto' when the request came over "
        "HTTPS (or X-Forwarded-Proto says so behind a proxy).",
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins in a row before the account is locked."
    )
    login_lockout_s: int = Field(
        300,
        ge=1,
        description="First lockout, seconds; each further failure doubles it (at most an hour).",
    )
    site_secret: str | None = Field(
        None,
        description="Key of the HMAC that stores patients' external ids (never stored in "
        "plaintext). Unset: a random secret kept in DATA_DIR/site-secret (0600); a "
        "distributed deployment must set the same value on every process.",
    )
    first_admin_password: str | None = Field(
        None,
        description="Password of the first admin that the first start creates; unset: a "
        "random one, shown once.",
    )
    # live updates: GET /v1/studies/{id}/events/stream
    stream_poll_s: float = Field(
        0.5, gt=0, le=60, description="A study's event stream looks for new events this often."
    )
    stream_recheck_s: float = Field(
        2.0,
        gt=0,
        le=300,
        description="A study's event stream re-checks the reader's membership this often; "
        "a removed member's stream ends within it.",
    )
    stream_keepalive_s: float = Field(
        15.0, gt=0, le=300, description="A comment line is sent after this long without events."
    )
    stream_max_s: float = Field(
        3600.0,
        gt=0,
        description="A study's event stream ends (`event: end`, reason `reconnect`) after "
        "this long; EventSource reconnects with Last-Event-ID (no stream is held forever).",
    )
    annotation_import_max_bytes: int = Field(
        32 * 1024 * 1024,
        gt=0,
        description="A GeoJSON annotation import larger than this gets 413 (imports are "
        "exempt from server.max_json_bytes).",
    )
    annotation_import_max_features: int = Field(
        200_000, gt=0, description="Features one annotation import may hold."
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
