"""audit log: hash chain (seq, prev_hash, entry_hash), actor key id and role, head row,
append-only triggers

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import registry.db
from registry.audit import GENESIS_HASH, entry_hash

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "audit_events is append-only"


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("actor_key_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("actor_role", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_seq"), ["seq"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # Chain the entries written before this revision, in the order they were written.
    events = sa.table(
        "audit_events", sa.column("id", sa.Integer()), sa.column("seq", sa.Integer()),
        sa.column("at", registry.db.UtcDateTime(timezone=True)), sa.column("actor", sa.String()),
        sa.column("action", sa.String()), sa.column("subject", sa.String()),
        sa.column("detail", sa.JSON()), sa.column("prev_hash", sa.String()),
        sa.column("entry_hash", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(events.c.id, events.c.at, events.c.actor, events.c.action,
                                  events.c.subject, events.c.detail).order_by(events.c.id)).all()
    prev, seq = GENESIS_HASH, 0
    for row in rows:
        seq += 1
        digest = entry_hash(prev, seq=seq, at=row.at, actor=row.actor, actor_key_id=None,
                            actor_role=None, action=row.action, subject=row.subject,
                            detail=row.detail)
        bind.execute(sa.update(events).where(events.c.id == row.id).values(
            seq=seq, prev_hash=prev, entry_hash=digest))
        prev = digest
    op.bulk_insert(head, [{"id": 1, "seq": seq, "hash": prev}])
    if bind.dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$""")
        op.execute("""CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE
                      ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""")
        op.execute("""CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE
                      ON audit_events FOR EACH STATEMENT
                      EXECUTE FUNCTION audit_events_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb}
                           ON audit_events BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_seq"), type_="unique")
        batch_op.drop_column("entry_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("actor_role")
        batch_op.drop_column("actor_key_id")
        batch_op.drop_column("seq")
