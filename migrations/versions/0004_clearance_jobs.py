"""clearance tables: jobs and per-item verdicts

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = registry.db.UtcDateTime(timezone=True)
    op.create_table(
        "clearance_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dataset_uri", sa.Text(), nullable=False),
        sa.Column("dataset_kind", sa.String(length=16), nullable=False),
        sa.Column("dataset_options", sa.JSON(), nullable=False),
        sa.Column("use", sa.String(length=40), nullable=False),
        sa.Column("licensee", sa.String(length=200), nullable=False),
        sa.Column("model_family", sa.String(length=200), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("owner_key_id", sa.Integer(), nullable=True),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("total_items", sa.Integer(), nullable=True),
        sa.Column("done_items", sa.Integer(), nullable=False),
        sa.Column("dataset_digest", sa.String(length=64), nullable=True),
        sa.Column("policy_versions", sa.JSON(), nullable=False),
        sa.Column("catalog_snapshot", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("started_at", utc, nullable=True),
        sa.Column("finished_at", utc, nullable=True),
        sa.Column("certificate", sa.JSON(), nullable=True),
        sa.Column("certified_at", utc, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearance_jobs")),
    )
    with op.batch_alter_table("clearance_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clearance_jobs_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_clearance_jobs_owner_key_id"), ["owner_key_id"], unique=False
        )

    op.create_table(
        "clearance_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=1000), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("item_id", sa.String(length=500), nullable=True),
        sa.Column("caption", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("machine_verdict", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("matches", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.Column("review_decision", sa.String(length=16), nullable=True),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", utc, nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["clearance_jobs.id"],
            name=op.f("fk_clearance_items_job_id_clearance_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clearance_items")),
        sa.UniqueConstraint("job_id", "item_key", name="uq_clearance_items_job_key"),
    )
    with op.batch_alter_table("clearance_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clearance_items_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_clearance_items_verdict"), ["verdict"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("clearance_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clearance_items_verdict"))
        batch_op.drop_index(batch_op.f("ix_clearance_items_job_id"))
    op.drop_table("clearance_items")
    with op.batch_alter_table("clearance_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clearance_jobs_owner_key_id"))
        batch_op.drop_index(batch_op.f("ix_clearance_jobs_status"))
    op.drop_table("clearance_jobs")
