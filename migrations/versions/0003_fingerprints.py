"""fingerprint tables

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fingerprints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("signal", sa.String(length=32), nullable=False),
        sa.Column("version", sa.SmallInteger(), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=True),
        sa.Column("y", sa.Integer(), nullable=True),
        sa.Column("w", sa.Integer(), nullable=True),
        sa.Column("h", sa.Integer(), nullable=True),
        sa.Column("time_s", sa.Double(), nullable=True),
        sa.Column("created_at", registry.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"],
            name=op.f("fk_fingerprints_asset_id_assets"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fingerprints")),
    )
    with op.batch_alter_table("fingerprints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fingerprints_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index("ix_fingerprints_signal_version", ["signal", "version"],
                              unique=False)
    op.create_table(
        "keypoint_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("time_s", sa.Double(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", registry.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"],
            name=op.f("fk_keypoint_sets_asset_id_assets"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keypoint_sets")),
    )
    with op.batch_alter_table("keypoint_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_keypoint_sets_asset_id"), ["asset_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("keypoint_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_keypoint_sets_asset_id"))
    op.drop_table("keypoint_sets")
    with op.batch_alter_table("fingerprints", schema=None) as batch_op:
        batch_op.drop_index("ix_fingerprints_signal_version")
        batch_op.drop_index(batch_op.f("ix_fingerprints_asset_id"))
    op.drop_table("fingerprints")
