"""Fingerprinting services (filled in by the fingerprinting issue)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from registry.catalog.models import Asset


def fingerprint_new_asset(session: Session, asset: Asset, data: bytes) -> None:
    """Hash a newly registered asset inside its import transaction."""
