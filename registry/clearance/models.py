"""Tables of the clearance area: clearance jobs and one row per dataset item with its verdict.

A job is written once at submission (its parameters), then a worker fills `clearance_items` batch
by batch, committing each batch as it finishes. The unique constraint (job_id, item_key) makes a
resumed job unable to write an item twice: resuming skips the keys already committed.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UtcDateTime, utcnow


class JobStatus(enum.StrEnum):
    pending = "pending"  # submitted, not started
    running = "running"  # started; a killed job stays here until resumed
    finished = "finished"
    failed = "failed"  # the job could not go on (reason in `error`); never resumed on start
    cancelled = "cancelled"  # stopped by a person; never resumed on start


class Verdict(enum.StrEnum):
    clear = "clear"  # no studio content, or every match allowed
    blocked = "blocked"  # any match denied
    review = "review"  # constrained or conflicting: needs legal
    error = "error"  # unreadable, with the reason


VERDICTS = tuple(v.value for v in Verdict)


class ClearanceJob(Base):
    __tablename__ = "clearance_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.pending.value, index=True)
    dataset_uri: Mapped[str] = mapped_column(Text)  # resolved local path of the dataset
    dataset_kind: Mapped[str] = mapped_column(String(16))  # folder|archive|webdataset|manifest
    dataset_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    use: Mapped[str] = mapped_column(String(40))
    licensee: Mapped[str] = mapped_column(String(200))
    model_family: Mapped[str | None] = mapped_column(String(200), default=None)
    owner: Mapped[str] = mapped_column(String(200))  # who submitted (API key name or CLI user)
    owner_key_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    workers: Mapped[int] = mapped_column(Integer, default=1)
    batch_size: Mapped[int] = mapped_column(Integer, default=32)
    total_items: Mapped[int | None] = mapped_column(Integer, default=None)
    done_items: Mapped[int] = mapped_column(Integer, default=0)
    dataset_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    policy_versions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    catalog_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    certificate: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    certified_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    # Which engine runs the items ("local" process pool or "ray"), and the lease of the worker
    # running the job now: another worker takes the job over once the lease has expired.
    engine: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)


class ClearanceItem(Base):
    __tablename__ = "clearance_items"
    __table_args__ = (
        UniqueConstraint("job_id", "item_key", name="uq_clearance_items_job_key"),
        # The console pages a job's items by verdict in dataset order, and counts per verdict.
        Index("ix_clearance_items_job_verdict_seq", "job_id", "verdict", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("clearance_jobs.id", ondelete="CASCADE"), index=True
    )
    item_key: Mapped[str] = mapped_column(String(1000))  # stable key inside the dataset
    seq: Mapped[int] = mapped_column(Integer)  # position in the dataset's sorted order
    path: Mapped[str] = mapped_column(Text)
    item_id: Mapped[str | None] = mapped_column(String(500), default=None)  # manifest id column
    caption: Mapped[str | None] = mapped_column(Text, default=None)
    url: Mapped[str | None] = mapped_column(Text, default=None)  # where the dataset says it is from
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    size_bytes: Mapped[int | None] = mapped_column(Integer, default=None)
    machine_verdict: Mapped[str] = mapped_column(String(16))  # as the engine decided
    verdict: Mapped[str] = mapped_column(String(16), index=True)  # after legal review
    matches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Opt-out signals the item carries for the job's use (IPTC PLUS, TDMRep, C2PA/CAWG).
    signals: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # small JPEG
    review_decision: Mapped[str | None] = mapped_column(String(16), default=None)
    reviewed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    review_comment: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
