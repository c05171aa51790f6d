"""clearance job leases: which worker runs a job, until when, and on which engine

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = registry.db.UtcDateTime(timezone=True)
    with op.batch_alter_table("clearance_jobs") as batch:
        batch.add_column(sa.Column("engine", sa.String(length=16), nullable=False,
                                   server_default="local"))
        batch.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", utc, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clearance_jobs") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
        batch.drop_column("engine")
