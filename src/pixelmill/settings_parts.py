"""Sections of the settings tree for the backends and services: storage, database,
cache, broker, jobs, ML, the research workspace, rate limits and quotas. The tree itself, and
the sections of the render path and the edge, are in :mod:`pixelmill.settings`, which
re-exports these; read them from there."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
    unavailable_wait_s: float = Field(
        5.0,
        ge=0,
        description="How long a publish waits out a queue that refuses messages (a "
        "negative confirm: its quorum queue member is starting or restarting) before it "
        "fails.",
    )


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
        "503 with Retry-After; a job of more tasks than this is refused with 422.",
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
        le=36500,
        description="Finished jobs (succeeded, failed, cancelled) older than this many days "
        "are deleted with their tasks, events and artifacts; result images stay. 0 keeps "
        "jobs forever; at most 36500 (a century).",
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
    max_tensor_bytes: int = Field(
        1 << 30,
        gt=0,
        description="Largest single tensor a model may make on the largest input served "
        "(batch 1, a tile_size tile; pixelmill.ml.onnx_bounds): models that could make a "
        "bigger one are refused (422) at registration and load. The shipped nuclei model's "
        "largest is 128 MiB at 1024 px.",
    )
    max_activation_bytes: int = Field(
        4 << 30,
        gt=0,
        description="Largest total of all a model's tensors on that input (an upper bound "
        "of its peak; the shipped nuclei model: 1.35 GiB at 1024 px, about 0.5 GiB used).",
    )
    arena_max_bytes: int = Field(
        0,
        ge=0,
        description="Cap of one memory arena ONNX Runtime then runs all models of a process "
        "in (shared; a run that needs more fails with 422 instead of exhausting the "
        "process); the first session of a process sets it. 0 = off (each session its own "
        "uncapped arena): the shared arena measured ~45% more peak memory on the nuclei "
        "model at 1024 px.",
    )
    drift_window: int = Field(200, ge=1, description="Served images in the drift window.")
    drift_min_samples: int = Field(20, ge=1, description="Images before drift can be flagged.")
    drift_threshold: float = Field(
        0.25, gt=0, description="PSI above which drift is flagged (0.1 moderate, 0.25 major)."
    )
    resolve_ttl_s: float = Field(
        2.0,
        ge=0,
        le=300,
        description="Seconds a model reference (name@alias) stays resolved, and a caller's "
        "permission to predict with a model stays granted, in a serving process; an alias "
        "moved or a grant revoked through this process is seen at once, one by another "
        "process within this time (0 = resolve and check on every request).",
    )
    bookkeeping_queue: int = Field(
        16,
        ge=1,
        le=1024,
        description="Served images waiting for drift bookkeeping off the request path; when "
        "full, a prediction waits for room (statistics are never dropped).",
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


class QuotaSettings(BaseModel):
    """Site-wide quotas of each member (docs/security.md, "Quotas"); an admin sets a
    user's own with ``PUT /v1/users/{id}/quota`` or ``pixelmill users quota``. 0 means
    unlimited."""

    enabled: bool = Field(True, description="Enforce quotas (off: usage is still reported).")
    admins_exempt: bool = Field(
        True, description="Site admins have no quotas unless an override names one."
    )
    stored_bytes: int = Field(
        50 * 1024**3,
        ge=0,
        description="Bytes a member may store: their images (uploads, imports, job results), "
        "datasets and model versions, each handle counted in full. 0: unlimited.",
    )
    concurrent_jobs: int = Field(
        100, ge=0, description="Jobs a member may have queued or running at once. 0: unlimited."
    )
    training_minutes: int = Field(
        6000,
        ge=0,
        description="Wall-clock minutes of training runs a member may use per calendar "
        "month (UTC); a run past it is stopped. 0: unlimited.",
    )
    max_epochs: int = Field(
        500, ge=0, description="Most epochs one training run of a member may ask. 0: unlimited."
    )
    retry_after_s: int = Field(
        30, ge=1, description="Retry-After of the 429 to a submit over concurrent_jobs."
    )
    cache_s: float = Field(
        5.0,
        ge=0,
        description="Seconds a process reuses a user's resolved limits; an override set in "
        "another process applies within this time (in the same process at once).",
    )
    jobs_count_s: float = Field(
        1.0,
        ge=0,
        description="Seconds a process reuses a user's count of queued and running jobs, "
        "adding its own submits to it (a submit that would reach the limit counts afresh). "
        "0: count at every submit.",
    )
    training_sync_s: float = Field(
        15.0,
        gt=0,
        description="How often a running training run records its minutes and re-reads the "
        "user's other runs (it stops within this time of the limit at most).",
    )
