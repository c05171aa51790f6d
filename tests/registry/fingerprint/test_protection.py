"""Weak assets are flagged with the reason, and stale fingerprints are listed (issue 11), on
SQLite and PostgreSQL, through the real import-time service."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import update
from sqlalchemy.orm import Session

from registry.catalog import BlobStore, ensure_rightsholder, register_asset
from registry.fingerprint import (
    fingerprint_new_asset,
    rebuild_fingerprints,
    stale_assets,
    weak_assets,
    weak_reasons,
)
from registry.fingerprint.models import Fingerprint
from tests.art import CATALOG_PORTRAITS, portrait, require_art
from tests.photos import skimage_photo
from tests.registry.fingerprint.helpers import add_photo


def _import(session: Session, store: BlobStore, image: Image.Image, name: str) -> int:
    out = io.BytesIO()
    image.save(out, "PNG")
    asset, _ = register_asset(session, store=store, data=out.getvalue(), name=name,
                              rightsholder=ensure_rightsholder(session, name="Northwind Games"))
    fingerprint_new_asset(session, asset, out.getvalue())
    return asset.id


def _silhouette(name: str) -> Image.Image:
    """A real portrait's outline filled with one colour: a flat silhouette."""
    art = Image.open(portrait(name)).convert("RGBA")
    flat = Image.new("RGBA", art.size, (40, 30, 60, 255))
    flat.putalpha(art.getchannel("A"))
    return flat


def test_flat_pictures_and_bare_silhouettes_are_weak_with_the_reason_and_real_art_is_not(
    session: Session, store: BlobStore
) -> None:
    require_art()
    sky = _import(session, store, Image.new("RGB", (400, 300), (120, 160, 210)), "sky.png")
    shape = _import(session, store, _silhouette(CATALOG_PORTRAITS[1]), "silhouette.png")
    art = add_photo(session, store, portrait(CATALOG_PORTRAITS[1])).id
    photo = add_photo(session, store, skimage_photo("chelsea.png")).id
    reasons = weak_reasons(session)
    assert set(reasons) == {sky, shape}
    assert reasons[sky].startswith("flat: best hash quality")
    assert reasons[shape].startswith("bare art: ") and "plain background" in reasons[shape]
    assert weak_reasons(session, [art, photo, shape]) == {shape: reasons[shape]}
    assert weak_reasons(session, []) == {}
    # The weak list and the rebuild summary follow the same rule: the bare silhouette too, not
    # only the flat sky.
    assert weak_assets(session) == sorted([sky, shape])
    assert rebuild_fingerprints(session, store=store, workers=1).weak == [sky, shape]


def test_fingerprints_of_an_older_version_are_listed_as_stale(
    session: Session, store: BlobStore
) -> None:
    old = add_photo(session, store, skimage_photo("coffee.png")).id
    current = add_photo(session, store, skimage_photo("chelsea.png")).id
    assert stale_assets(session) == []
    session.execute(update(Fingerprint).where(Fingerprint.asset_id == old,
                                              Fingerprint.signal == "pdq").values(version=1))
    assert stale_assets(session) == [old] and current != old
