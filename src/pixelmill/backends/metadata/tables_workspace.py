"""The research workspace's tables: users, sessions, studies, members, patients, study
images, annotations (every version kept), analyses, threads and messages, and the
append-only event log. Shared by the repositories and migration 0007."""

from __future__ import annotations

import sqlalchemy as sa

from pixelmill.backends.metadata.tables import metadata

_TS = sa.DateTime(timezone=True)
#: an autoincrementing 64-bit key (SQLite autoincrements only INTEGER PRIMARY KEY)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(32), primary_key=True)


def _user_fk(name: str, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(
        name, sa.String(32), sa.ForeignKey("users.id", ondelete="RESTRICT"), nullable=nullable
    )


users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("site_role", sa.String(16), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("disabled_at", _TS, nullable=True),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", _TS, nullable=True),
    sa.Column("last_login_at", _TS, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # SHA-256 of the cookie's secret: a stolen database opens no session
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "user_id",
        sa.String(32),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("csrf_hash", sa.String(64), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("expires_at", _TS, nullable=False, index=True),
    sa.Column("last_seen_at", _TS, nullable=False),
)

# failed logins per submitted (normalised) username, whether a user has it or not, so a
# lockout tells nothing about which usernames exist; a row goes a day after its last
# failure (once unlocked)
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("locked_until", _TS, nullable=True),
    sa.Column("last_failed_at", _TS, nullable=False, index=True),
)

studies = sa.Table(
    "studies",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("modality", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    _user_fk("created_by"),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("last_activity_at", _TS, nullable=False, index=True),
    # per-study options: de-identification fields, keep originals, public renders
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("patient_seq", sa.Integer, nullable=False, server_default="0"),
)

study_members = sa.Table(
    "study_members",
    metadata,
    sa.Column(
        "study_id", sa.String(32), sa.ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "user_id",
        sa.String(32),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("added_at", _TS, nullable=False),
    _user_fk("added_by", nullable=True),
)

patients = sa.Table(
    "patients",
    metadata,
    _id(),
    sa.Column(
        "study_id", sa.String(32), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("code", sa.String(16), nullable=False),
    # keyed HMAC of the external id (the site secret); the id itself is never stored
    sa.Column("external_id_hmac", sa.String(64), nullable=True),
    sa.Column("sex", sa.String(16), nullable=True),
    sa.Column("age_band", sa.String(16), nullable=True),
    sa.Column("diagnosis", sa.String(200), nullable=True),
    sa.Column("arm", sa.String(64), nullable=True),
    sa.Column("tags", sa.JSON, nullable=False),
    _user_fk("created_by"),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.UniqueConstraint("study_id", "code", name="uq_patients_study_code"),
    sa.UniqueConstraint("study_id", "external_id_hmac", name="uq_patients_study_external"),
)

study_images = sa.Table(
    "study_images",
    metadata,
    sa.Column(
        "study_id", sa.String(32), sa.ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "image_id",
        sa.String(64),
        sa.ForeignKey("images.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("stain", sa.String(64), nullable=True),
    sa.Column("magnification", sa.Float, nullable=True),
    sa.Column("pixel_size_um", sa.Float, nullable=True),
    sa.Column(
        "patient_id",
        sa.String(32),
        sa.ForeignKey("patients.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    sa.Column("analysis_status", sa.String(16), nullable=False, server_default="none"),
    _user_fk("added_by"),
    sa.Column("added_at", _TS, nullable=False),
    sa.Index("ix_study_images_study_added", "study_id", "added_at", "image_id"),
)

annotation_rows = sa.Table(
    "annotations",
    metadata,
    _id(),
    sa.Column(
        "study_id",
        sa.String(32),
        sa.ForeignKey("studies.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column(
        "image_id", sa.String(64), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("geom_type", sa.String(16), nullable=False),
    sa.Column("geometry", sa.JSON, nullable=False),
    sa.Column("object_type", sa.String(16), nullable=False, server_default="annotation"),
    sa.Column("class_name", sa.String(100), nullable=True),
    sa.Column("color", sa.JSON, nullable=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("properties", sa.JSON, nullable=False),
    sa.Column("measurements", sa.JSON, nullable=False),
    # the bounding box, in level-0 pixels: the viewport query's index
    sa.Column("min_x", sa.Float, nullable=False),
    sa.Column("min_y", sa.Float, nullable=False),
    sa.Column("max_x", sa.Float, nullable=False),
    sa.Column("max_y", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False, server_default="manual"),
    sa.Column("analysis_id", sa.String(32), nullable=True),
    _user_fk("author_id"),
    sa.Column("created_at", _TS, nullable=False),
    _user_fk("updated_by"),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("deleted_at", _TS, nullable=True),
    sa.Index("ix_annotations_viewport", "image_id", "min_x", "max_x", "min_y", "max_y"),
)

annotation_versions = sa.Table(
    "annotation_versions",
    metadata,
    sa.Column(
        "annotation_id",
        sa.String(32),
        sa.ForeignKey("annotations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("op", sa.String(16), nullable=False),  # create | update | delete | revert
    # the whole feature as it was after this version: geometry and properties
    sa.Column("snapshot", sa.JSON, nullable=False),
    _user_fk("author_id"),
    sa.Column("created_at", _TS, nullable=False),
)

analyses = sa.Table(
    "analyses",
    metadata,
    _id(),
    sa.Column(
        "study_id",
        sa.String(32),
        sa.ForeignKey("studies.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("job_id", sa.String(64), nullable=True, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # preset | model
    sa.Column("target", sa.String(200), nullable=False),  # preset name or model@version
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("image_ids", sa.JSON, nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),  # image id -> summary and artifact links
    _user_fk("created_by"),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

threads = sa.Table(
    "threads",
    metadata,
    _id(),
    sa.Column(
        "study_id",
        sa.String(32),
        sa.ForeignKey("studies.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column(
        "image_id", sa.String(64), sa.ForeignKey("images.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("region", sa.JSON, nullable=True),  # a viewport {x, y, w, h} or a geometry
    _user_fk("created_by"),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("last_message_at", _TS, nullable=False),
    sa.Column("resolved_at", _TS, nullable=True),
)

messages = sa.Table(
    "messages",
    metadata,
    _id(),
    sa.Column(
        "thread_id", sa.String(32), sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False
    ),
    _user_fk("author_id"),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("edited_at", _TS, nullable=True),
    sa.Column("deleted_at", _TS, nullable=True),
    sa.Index("ix_messages_thread_created", "thread_id", "created_at"),
)

message_edits = sa.Table(
    "message_edits",
    metadata,
    sa.Column(
        "message_id",
        sa.String(32),
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("edit", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),  # the text before this edit
    sa.Column("edited_at", _TS, nullable=False),
)

thread_reads = sa.Table(
    "thread_reads",
    metadata,
    sa.Column(
        "thread_id",
        sa.String(32),
        sa.ForeignKey("threads.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("read_at", _TS, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("at", _TS, nullable=False, index=True),
    sa.Column("actor_id", sa.String(32), nullable=True),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(64), nullable=True),
    sa.Column("study_id", sa.String(32), nullable=True),
    sa.Column("security", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("before", sa.JSON, nullable=True),
    sa.Column("after", sa.JSON, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    # the X-Request-ID of the request that made it (None: a worker, the CLI, a daemon)
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Index("ix_events_study_id", "study_id", "id"),
    sa.Index("ix_events_request_id", "request_id"),
)

model_permissions = sa.Table(
    "model_permissions",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column(
        "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("level", sa.String(16), nullable=False),  # read | edit | manage
    sa.Column("granted_at", _TS, nullable=False),
    _user_fk("granted_by", nullable=True),
)
