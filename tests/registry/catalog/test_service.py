"""Catalog services on real SQLite and real PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from registry import catalog
from registry.catalog import AssetFilter, BlobStore
from registry.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from tests.factories import make_asset, make_franchise, make_rightsholder, photo_bytes


def test_registering_an_asset_stores_its_facts_and_blob(session: Session, store: BlobStore) -> None:
    holder = make_rightsholder(session)
    franchise = make_franchise(session, holder)
    asset = make_asset(session, store, holder=holder, franchise=franchise, tags=("Hero", "key art"))
    session.commit()
    assert asset.kind == "image" and asset.media_type == "image/png"
    assert (asset.width, asset.height) == (512, 512)
    assert asset.tags == ["hero", "key art"]
    assert store.read(asset.sha256) == photo_bytes()
    assert catalog.get_asset(session, asset.sha256).id == asset.id
    assert catalog.get_asset(session, str(asset.id)).id == asset.id


def test_the_same_bytes_twice_return_the_existing_asset(session: Session, store: BlobStore) -> None:
    holder = make_rightsholder(session)
    first, created = catalog.register_asset(
        session, store=store, data=photo_bytes(), name="a.png", rightsholder=holder
    )
    again, created_again = catalog.register_asset(
        session,
        store=store,
        data=photo_bytes(),
        name="copy.png",
        rightsholder=holder,
        tags=["extra"],
    )
    assert created and not created_again
    assert again.id == first.id and again.tags == ["extra"]
    assert catalog.list_assets(session)[1] == 1


def test_a_failed_transaction_leaves_no_blob(session: Session, store: BlobStore) -> None:
    holder = make_rightsholder(session)
    session.commit()
    asset = make_asset(session, store, holder=holder)
    assert store.exists(asset.sha256)
    session.rollback()
    assert not store.exists(asset.sha256)
    assert store.files() == []


def test_listing_filters_and_pages(session: Session, store: BlobStore) -> None:
    holder = make_rightsholder(session)
    sky = make_franchise(session, holder, "Skyreach")
    other = make_franchise(session, holder, "Deepwell")
    for photo in ("astronaut.png", "coffee.png", "chelsea.png"):
        make_asset(session, store, photo=photo, holder=holder, franchise=sky, tags=("demo",))
    make_asset(session, store, photo="rocket.jpg", holder=holder, franchise=other)
    items, total = catalog.list_assets(session, where=AssetFilter(franchise_id=sky.id), limit=2)
    assert total == 3 and len(items) == 2
    items, total = catalog.list_assets(session, where=AssetFilter(tag="DEMO"), offset=2, limit=2)
    assert total == 3 and [a.title for a in items] == ["chelsea"]
    assert catalog.list_assets(session, where=AssetFilter(q="rock"))[1] == 1
    with pytest.raises(InvalidInput):
        catalog.list_assets(session, limit=0)


def test_lookups_raise_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        catalog.get_asset(session, "0" * 64)
    with pytest.raises(NotFound):
        catalog.get_asset(session, "nonsense")
    with pytest.raises(NotFound):
        catalog.get_rightsholder(session, "Nobody")
    assert catalog.find_franchise(session, "Nothing") is None


def test_names_are_unique_and_franchises_keep_their_owner(session: Session) -> None:
    holder = make_rightsholder(session)
    other = make_rightsholder(session, "Meridian Pictures")
    catalog.create_franchise(session, name="Skyreach", rightsholder=holder)
    with pytest.raises(AlreadyExists):
        catalog.create_rightsholder(session, name="Northwind Games")
    with pytest.raises(AlreadyExists):
        catalog.create_franchise(session, name="Skyreach", rightsholder=holder)
    with pytest.raises(Conflict):
        catalog.ensure_franchise(session, name="Skyreach", rightsholder=other)


def test_licences_record_scope_and_period(session: Session) -> None:
    holder = make_rightsholder(session)
    licence = catalog.create_licence(
        session,
        name="NW-Lumen-2026",
        licensor=holder,
        licensee="Lumen AI",
        scope={"franchises": ["Skyreach"]},
        valid_from=dt.date(2026, 1, 1),
        valid_to=dt.date(2026, 12, 31),
        territories=["EU"],
        policy_file="northwind.yaml",
    )
    session.commit()
    assert catalog.get_licence(session, "NW-Lumen-2026").scope == {"franchises": ["Skyreach"]}
    assert [lic.id for lic in catalog.list_licences(session, licensee="Lumen AI")] == [licence.id]
    with pytest.raises(InvalidInput, match="before"):
        catalog.create_licence(
            session,
            name="bad",
            licensor=holder,
            licensee="x",
            valid_from=dt.date(2026, 2, 1),
            valid_to=dt.date(2026, 1, 1),
        )
