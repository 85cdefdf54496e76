"""workspace: users, sessions, studies, members, patients, study images, annotations
and their versions, analyses, threads and messages, events, model permissions; owners
for images and keys

A database made by an earlier release keeps every image, job, dataset and model. When it
holds any API key, image or job, this revision creates the first admin user (``admin``,
no password yet: the next ``pixelmill up`` sets one and shows it once), gives it every
existing key, and makes it the owner of every existing image and owned job (jobs were
owned by key ids; every key is now the admin's).

Images get one row per owner and content (``uq_images_owner_sha256`` replaces the
global unique sha256), so a re-upload by another user is a new handle of its own.

Revision ID: 0007_workspace
Revises: 0006_job_event_notify
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from pixelmill.backends.metadata import tables_workspace as tw

revision = "0007_workspace"
down_revision = "0006_job_event_notify"
branch_labels = None
depends_on = None

_NEW_TABLES = (
    tw.users,
    tw.sessions,
    tw.studies,
    tw.study_members,
    tw.patients,
    tw.study_images,
    tw.annotation_rows,
    tw.annotation_versions,
    tw.analyses,
    tw.threads,
    tw.messages,
    tw.message_edits,
    tw.thread_reads,
    tw.events,
    tw.model_permissions,
)


def _has_rows(bind: sa.engine.Connection, table: str) -> bool:
    return bind.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None


def _adopt_existing_data(bind: sa.engine.Connection) -> None:
    if not any(_has_rows(bind, t) for t in ("api_keys", "images", "jobs")):
        return
    admin = secrets.token_hex(8)
    bind.execute(
        tw.users.insert().values(
            id=admin,
            username="admin",
            display_name="Administrator",
            password_hash=None,
            site_role="admin",
            created_at=datetime.now(UTC),
        )
    )
    bind.execute(sa.text("UPDATE api_keys SET user_id = :u"), {"u": admin})
    bind.execute(sa.text("UPDATE images SET owner_id = :u"), {"u": admin})
    bind.execute(sa.text("UPDATE jobs SET owner = :u WHERE owner <> ''"), {"u": admin})
    bind.execute(
        sa.text("UPDATE ml_datasets SET created_by = :u WHERE created_by IS NOT NULL"),
        {"u": admin},
    )


def upgrade() -> None:
    bind = op.get_bind()
    for table in _NEW_TABLES:
        table.create(bind)
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(32), nullable=False, server_default=""))
        batch.drop_constraint("uq_images_sha256", type_="unique")
        batch.create_unique_constraint("uq_images_owner_sha256", ["owner_id", "sha256"])
        batch.create_index("ix_images_sha256", ["sha256"])
        batch.create_index("ix_images_owner_created", ["owner_id", "created_at", "id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("user_id", sa.String(32), nullable=True))
        batch.create_index("ix_api_keys_user_id", ["user_id"])
    with op.batch_alter_table("ml_datasets") as batch:
        batch.drop_constraint("uq_ml_datasets_sha256", type_="unique")
        batch.create_unique_constraint("uq_ml_datasets_created_by", ["created_by", "sha256"])
    _adopt_existing_data(bind)


def downgrade() -> None:
    with op.batch_alter_table("ml_datasets") as batch:
        batch.drop_constraint("uq_ml_datasets_created_by", type_="unique")
        batch.create_unique_constraint("uq_ml_datasets_sha256", ["sha256"])
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_user_id")
        batch.drop_column("user_id")
    with op.batch_alter_table("images") as batch:
        batch.drop_index("ix_images_owner_created")
        batch.drop_index("ix_images_sha256")
        batch.drop_constraint("uq_images_owner_sha256", type_="unique")
        batch.create_unique_constraint("uq_images_sha256", ["sha256"])
        batch.drop_column("owner_id")
    bind = op.get_bind()
    for table in reversed(_NEW_TABLES):
        table.drop(bind)
