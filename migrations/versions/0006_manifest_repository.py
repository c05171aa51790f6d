"""manifest repository: every manifest we sign, with its soft binding and fingerprints

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = registry.db.UtcDateTime(timezone=True)
    op.create_table(
        "manifest_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.String(length=200), nullable=False),
        sa.Column("signed_sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("store", sa.LargeBinary(), nullable=False),
        sa.Column("store_sha256", sa.String(length=64), nullable=False),
        sa.Column("studio", sa.String(length=200), nullable=False),
        sa.Column("signer", sa.String(length=500), nullable=False),
        sa.Column("signer_common_name", sa.String(length=200), nullable=True),
        sa.Column("signer_serial", sa.String(length=100), nullable=False),
        sa.Column("signer_cert_sha256", sa.String(length=64), nullable=False),
        sa.Column("signed_at", utc, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("ingredients", sa.JSON(), nullable=False),
        sa.Column("training_mining", sa.JSON(), nullable=False),
        sa.Column("training_source", sa.String(length=60), nullable=False),
        sa.Column("iscc", sa.String(length=80), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest_records")),
        sa.UniqueConstraint("manifest_id", name=op.f("uq_manifest_records_manifest_id")),
    )
    with op.batch_alter_table("manifest_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_manifest_records_signed_sha256"), ["signed_sha256"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_manifest_records_iscc"), ["iscc"], unique=False)

    op.create_table(
        "manifest_fingerprints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("alg", sa.String(length=60), nullable=False),
        sa.Column("region", sa.String(length=40), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["manifest_records.id"],
            name=op.f("fk_manifest_fingerprints_record_id_manifest_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest_fingerprints")),
    )
    with op.batch_alter_table("manifest_fingerprints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_manifest_fingerprints_record_id"), ["record_id"], unique=False
        )
        batch_op.create_index("ix_manifest_fingerprints_alg_value", ["alg", "value"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("manifest_fingerprints", schema=None) as batch_op:
        batch_op.drop_index("ix_manifest_fingerprints_alg_value")
        batch_op.drop_index(batch_op.f("ix_manifest_fingerprints_record_id"))
    op.drop_table("manifest_fingerprints")
    with op.batch_alter_table("manifest_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_manifest_records_iscc"))
        batch_op.drop_index(batch_op.f("ix_manifest_records_signed_sha256"))
    op.drop_table("manifest_records")
