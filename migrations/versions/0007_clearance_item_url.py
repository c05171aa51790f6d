"""clearance items keep the URL the dataset gives for them (manifest `url`, imagefolder metadata,
WebDataset parquet), so verdicts can be looked up by item key, URL or sha256

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clearance_items") as batch:
        batch.add_column(sa.Column("url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clearance_items") as batch:
        batch.drop_column("url")
