"""console sessions, and the (job, verdict, seq) index the console pages items by

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = registry.db.UtcDateTime(timezone=True)
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("last_seen_at", utc, nullable=False),
        sa.Column("expires_at", utc, nullable=False),
        sa.Column("ended_at", utc, nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"],
            name=op.f("fk_console_sessions_api_key_id_api_keys"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_sessions_api_key_id"), ["api_key_id"], unique=False
        )
    with op.batch_alter_table("clearance_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clearance_items_job_verdict_seq", ["job_id", "verdict", "seq"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("clearance_items", schema=None) as batch_op:
        batch_op.drop_index("ix_clearance_items_job_verdict_seq")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_sessions_api_key_id"))
    op.drop_table("console_sessions")
