"""Bulk import: idempotent, per-file errors, sidecars, and no orphans after a crash."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from registry.catalog import BlobStore, ImportOptions, import_paths, list_assets, read_sidecar
from registry.catalog.importer import import_file
from registry.catalog.models import Asset
from registry.errors import InvalidInput
from tests.factories import snapshot, write_bad_file
from tests.photos import skimage_photo

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "drop"
    (root / "sub").mkdir(parents=True)
    for i, name in enumerate(PHOTOS):
        shutil.copy(skimage_photo(name), root / ("sub" if i % 2 else ".") / name)
    return root


def test_importing_a_folder_twice_creates_no_duplicates(
    session_factory: sessionmaker[Session], store: BlobStore, folder: Path
) -> None:
    options = ImportOptions(rightsholder="Northwind Games", franchise="Skyreach", tags=["demo"])
    first = import_paths(session_factory, store, [folder], options)
    second = import_paths(session_factory, store, [folder], options)
    assert [r.status for r in first] == ["created"] * 4
    assert [r.status for r in second] == ["existing"] * 4
    assert [r.asset_id for r in first] == [r.asset_id for r in second]
    with session_factory() as session:
        assert list_assets(session)[1] == 4
    assert len(store.files()) == 4


def test_a_bad_file_is_reported_and_the_batch_goes_on(
    session_factory: sessionmaker[Session], store: BlobStore, folder: Path
) -> None:
    write_bad_file(folder, "truncated_jpeg")
    results = import_paths(session_factory, store, [folder], ImportOptions(rightsholder="NW"))
    errors = [r for r in results if r.status == "error"]
    assert len(results) == 5 and len(errors) == 1
    assert "truncated.jpg" in (errors[0].error or "") and errors[0].asset_id is None
    assert len(store.files()) == 4


def test_a_crash_mid_import_leaves_no_orphan_rows_or_blobs(
    session_factory: sessionmaker[Session], store: BlobStore, folder: Path
) -> None:
    options = ImportOptions(rightsholder="Northwind Games", franchise="Skyreach")
    before = snapshot(session_factory, store)
    calls = []

    def explode_on_third(session: Session, asset: object, data: bytes) -> None:
        calls.append(asset)
        if len(calls) == 3:
            raise RuntimeError("injected failure after the row and blob were written")

    with pytest.raises(RuntimeError, match="injected"):
        import_paths(session_factory, store, [folder], options, after_register=explode_on_third)
    after = snapshot(session_factory, store)
    assert after["rows"]["assets"] == 2
    assert len(after["blobs"]) == 2
    # Re-running finishes the job with nothing duplicated.
    import_paths(session_factory, store, [folder], options)
    final = snapshot(session_factory, store)
    assert final["rows"]["assets"] == 4 and len(final["blobs"]) == 4
    assert before["rows"]["assets"] == 0


def test_a_sidecar_gives_titles_franchises_and_tags(
    session_factory: sessionmaker[Session], store: BlobStore, folder: Path
) -> None:
    (folder / "meta.csv").write_text(
        "path,title,franchise,tags\nastronaut.png,Hero portrait,Skyreach,hero;portrait\n"
    )
    (folder / "meta.json").write_text(
        json.dumps(
            [{"path": "sub/coffee.png", "title": "Cafe", "franchise": "Deepwell", "tags": ["prop"]}]
        )
    )
    sidecar = read_sidecar(folder / "meta.csv") | read_sidecar(folder / "meta.json")
    options = ImportOptions(rightsholder="Northwind Games", sidecar=sidecar)
    results = import_paths(
        session_factory, store, [folder / "astronaut.png", folder / "sub" / "coffee.png"], options
    )
    with session_factory() as session:
        assets, _ = list_assets(session)
        by_title = {a.title: a for a in assets}
        assert [r.status for r in results] == ["created", "created"]
        assert by_title["Hero portrait"].tags == ["hero", "portrait"]
        assert by_title["Hero portrait"].franchise.name == "Skyreach"
        assert by_title["Cafe"].franchise.name == "Deepwell"


def test_a_malformed_sidecar_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "meta.json"
    bad.write_text('[{"path": "a.png",}]')
    with pytest.raises(InvalidInput, match="line 1: invalid JSON"):
        read_sidecar(bad)
    nopath = tmp_path / "meta.csv"
    nopath.write_text("file,title\na.png,x\n")
    with pytest.raises(InvalidInput, match="'path' column"):
        read_sidecar(nopath)


def test_a_workers_validation_is_used_only_for_the_same_bytes_under_the_same_limits(
    session_factory: sessionmaker[Session], store: BlobStore, folder: Path
) -> None:
    """A bulk import's worker process decoded each file already (`prepare_features`); the
    import's transaction takes its `Probed` instead of decoding again, but only for the bytes
    it was made from and limits no looser than the import's: otherwise it decodes them itself.
    A bad file's worker gives no validation, and the import still reports the file's error."""
    from registry.fingerprint.service import prepare_features

    write_bad_file(folder, "truncated_jpeg")
    files = sorted(folder.rglob("*.*"))
    options = ImportOptions(rightsholder="NW")
    prepared = list(prepare_features(files, workers=1))
    assert [p is None for p in prepared] == [f.name == "truncated.jpg" for f in files]
    coffee = next(p for f, p in zip(files, prepared, strict=True) if f.name == "coffee.png")
    assert coffee is not None and (coffee.probed.info.width, coffee.probed.info.height) == (
        600, 400)
    # Told (falsely) that coffee.png is 7x7: taken as it is, proving no second decode.
    told = replace(coffee.probed, info=replace(coffee.probed.info, width=7, height=7))
    looser = replace(told, max_pixels=options.max_pixels + 1)
    other = replace(told, sha256="0" * 64)
    for name, probed, size in [("coffee.png", told, (7, 7)), ("coffee.png", looser, (600, 400)),
                               ("coffee.png", other, (600, 400)),
                               ("truncated.jpg", None, None)]:
        with session_factory() as session:  # each case registers the file anew
            session.execute(delete(Asset))
            session.commit()
        result = import_file(session_factory, store, next(f for f in files if f.name == name),
                             options, probed=probed)
        if size is None:
            assert result.status == "error" and "truncated.jpg" in (result.error or "")
            continue
        with session_factory() as session:
            asset = session.get(Asset, result.asset_id)
            assert asset is not None and (asset.width, asset.height) == size, (name, probed)
