"""Tables of the policy area: every policy file version that was ever loaded.

A row is one file's exact bytes (with their sha256) at the time they were first loaded, so a
decision that names `file@sha256` can always be traced back to the terms that made it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UtcDateTime, utcnow


class PolicyFileVersion(Base):
    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("file", "sha256", name="uq_policy_versions_file_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file: Mapped[str] = mapped_column(String(500), index=True)  # name relative to policies dir
    sha256: Mapped[str] = mapped_column(String(64))
    policy_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    content: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
