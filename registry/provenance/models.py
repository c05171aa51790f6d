"""Tables of the manifest repository: every manifest Clearhouse signs, and its fingerprints.

A `manifest_records` row keeps the manifest store exactly as it was embedded (the JUMBF bytes
c2pa returned when signing), the sha256 of the signed file, who signed it (certificate subject,
serial and sha256: the certificate itself is inside the store, so a record stays readable and
verifiable after the signing key is rotated or retired), when, the actions, ingredients and
training permissions, and the ISCC soft binding. `manifest_fingerprints` holds the values a
stripped copy is looked up by: the ISCC unit (`io.iscc.v0`) and our own PDQ hashes
(`com.clearhouse.pdq`, whole picture and windows).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base, UtcDateTime, utcnow


class ManifestRecord(Base):
    __tablename__ = "manifest_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    manifest_id: Mapped[str] = mapped_column(String(200), unique=True)  # active manifest label
    signed_sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    store: Mapped[bytes] = mapped_column(LargeBinary)  # the manifest store (application/c2pa)
    store_sha256: Mapped[str] = mapped_column(String(64))
    studio: Mapped[str] = mapped_column(String(200))
    signer: Mapped[str] = mapped_column(String(500))  # certificate subject (RFC 4514)
    signer_common_name: Mapped[str | None] = mapped_column(String(200), default=None)
    signer_serial: Mapped[str] = mapped_column(String(100))  # hex
    signer_cert_sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # who asked for the signature
    model: Mapped[str | None] = mapped_column(String(200), default=None)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    ingredients: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # use -> {"use": allowed|notAllowed|constrained, "constraint_info"}; {} when opted out.
    training_mining: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Where the permissions came from: policy | studio_default | explicit | opted_out (and mixes
    # such as "policy+explicit").
    training_source: Mapped[str] = mapped_column(String(60))
    iscc: Mapped[str | None] = mapped_column(String(80), default=None, index=True)
    note: Mapped[str | None] = mapped_column(Text, default=None)


class ManifestFingerprint(Base):
    __tablename__ = "manifest_fingerprints"
    __table_args__ = (Index("ix_manifest_fingerprints_alg_value", "alg", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("manifest_records.id", ondelete="CASCADE"), index=True
    )
    alg: Mapped[str] = mapped_column(String(60))  # io.iscc.v0 | com.clearhouse.pdq
    region: Mapped[str] = mapped_column(String(40))  # full | w80/centre | ...
    value: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[int] = mapped_column(Integer, default=100)
