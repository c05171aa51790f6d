"""Catalog tables: rightsholders, franchises, assets (with tags) and licences."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.db import Base, UtcDateTime, utcnow

ASSET_KINDS = ("image", "video")


class Rightsholder(Base):
    __tablename__ = "rightsholders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    franchises: Mapped[list[Franchise]] = relationship(back_populates="rightsholder")


class Franchise(Base):
    __tablename__ = "franchises"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    rightsholder_id: Mapped[int] = mapped_column(ForeignKey("rightsholders.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    rightsholder: Mapped[Rightsholder] = relationship(back_populates="franchises")


class Asset(Base):
    """One registered work, identified by its id and by the sha256 of its original bytes."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # one of ASSET_KINDS
    title: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(default=None)
    media_type: Mapped[str] = mapped_column(String(100))
    blob_path: Mapped[str] = mapped_column(String(200))  # relative to the blob store root
    original_name: Mapped[str | None] = mapped_column(String(500), default=None)
    rightsholder_id: Mapped[int] = mapped_column(ForeignKey("rightsholders.id"), index=True)
    franchise_id: Mapped[int | None] = mapped_column(
        ForeignKey("franchises.id"), index=True, default=None
    )
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    rightsholder: Mapped[Rightsholder] = relationship(lazy="joined")
    franchise: Mapped[Franchise | None] = relationship(lazy="joined")
    tag_rows: Mapped[list[AssetTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AssetTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class AssetTag(Base):
    __tablename__ = "asset_tags"

    asset_id: Mapped[int] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Licence(Base):
    """An agreement between a rightsholder (licensor) and a licensee; terms live in policies/."""

    __tablename__ = "licences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    licensor_id: Mapped[int] = mapped_column(ForeignKey("rightsholders.id"), index=True)
    licensee: Mapped[str] = mapped_column(String(200), index=True)  # or "*"
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # franchises/assets/tags
    valid_from: Mapped[dt.date | None] = mapped_column(Date, default=None)
    valid_to: Mapped[dt.date | None] = mapped_column(Date, default=None)
    territories: Mapped[list[str]] = mapped_column(JSON, default=list)
    model_families: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy_file: Mapped[str | None] = mapped_column(String(500), default=None)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    licensor: Mapped[Rightsholder] = relationship(lazy="joined")
