"""Tables of the fingerprint area: hashes per asset region/frame, and keypoint sets.

Both are derived data: `clearhouse fingerprint rebuild` recomputes them from the blob store. The
faiss indexes under CLEARHOUSE_HOME/index are built from these rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UtcDateTime, utcnow


class Fingerprint(Base):
    """One hash of one region (or video frame) of an asset, with its signal's version."""

    __tablename__ = "fingerprints"
    __table_args__ = (Index("ix_fingerprints_signal_version", "signal", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), index=True
    )
    signal: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(SmallInteger)
    region: Mapped[str] = mapped_column(String(32))  # "full/identity", "w80/4", ...
    hash: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[int] = mapped_column(SmallInteger)
    x: Mapped[int | None] = mapped_column(Integer, default=None)
    y: Mapped[int | None] = mapped_column(Integer, default=None)
    w: Mapped[int | None] = mapped_column(Integer, default=None)
    h: Mapped[int | None] = mapped_column(Integer, default=None)
    time_s: Mapped[float | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class KeypointSet(Base):
    """SIFT keypoints of an asset (or of one video frame), as a compressed npz blob."""

    __tablename__ = "keypoint_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(SmallInteger)
    count: Mapped[int] = mapped_column(Integer)
    time_s: Mapped[float | None] = mapped_column(default=None)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
