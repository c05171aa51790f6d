"""Datasets as ML teams hold them, each cleared from files the test makes (no network): an
img2dataset/LAION manifest of URLs with a local image folder, WebDataset shards with per-shard
parquet metadata, a Croissant JSON-LD file pointing at local files and an archive."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from registry import clearance
from registry.catalog import BlobStore
from registry.clearance.datasets import open_dataset, read_item
from registry.errors import InvalidInput
from registry.policy import load_policies
from tests.photos import skimage_photo
from tests.registry.clearance import scenario


def _jpeg(name: str, factor: float = 0.5) -> bytes:
    image = Image.open(skimage_photo(name)).convert("RGB")
    image = image.resize((round(image.width * factor), round(image.height * factor)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_img2dataset(root: Path) -> Path:
    """An img2dataset download (00000/000000000.jpg + .json with the url) and the LAION-style
    parquet that was downloaded (URL, TEXT, key), one row with no local copy."""
    cache = root / "images" / "00000"
    cache.mkdir(parents=True)
    rows = []
    photos = {"000000000": "coffee.png", "000000001": "horse.png", "000000002": "camera.png"}
    for key, photo in photos.items():
        (cache / f"{key}.jpg").write_bytes(_jpeg(photo))
        (cache / f"{key}.json").write_text(json.dumps(
            {"url": f"https://img.example.com/{photo}", "key": key, "status": "success"}))
    rows.append({"URL": "https://img.example.com/coffee.png", "TEXT": "a coffee",
                 "key": "000000000"})
    rows.append({"URL": "https://img.example.com/horse.png", "TEXT": "a horse"})  # by url
    rows.append({"URL": "https://cdn.example.net/camera", "TEXT": "a camera",  # by sha256
                 "sha256": hashlib.sha256((cache / "000000002.jpg").read_bytes()).hexdigest()})
    rows.append({"URL": "https://gone.example.org/x.jpg", "TEXT": "failed download"})
    columns = ("URL", "TEXT", "key", "sha256")
    rows = [{c: row.get(c) for c in columns} for row in rows]  # pyarrow infers from row 1
    pq.write_table(pa.Table.from_pylist(rows), root / "laion.parquet")
    return root / "laion.parquet"


def make_webdataset(root: Path) -> Path:
    shards = root / "wds"
    shards.mkdir()
    with tarfile.open(shards / "train-000.tar", "w") as tar:
        _add(tar, "000000000.jpg", _jpeg("coffee.png"))
        _add(tar, "000000001.jpg", _jpeg("horse.png"))
    pq.write_table(pa.Table.from_pylist([
        {"key": "000000000", "caption": "coffee cup", "url": "https://a.example/c.jpg"},
        {"key": "000000001", "caption": "a horse", "url": "https://b.example/h.jpg"}]),
        shards / "train-000.parquet")
    return shards


def make_croissant(root: Path) -> Path:
    folder = root / "croissant"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "horse.jpg").write_bytes(_jpeg("horse.png"))
    (folder / "images" / "notes.csv").write_text("a,b\n")
    (folder / "cover.jpg").write_bytes(_jpeg("coffee.png"))
    with tarfile.open(folder / "extra.tar", "w") as tar:
        _add(tar, "pics/camera.jpg", _jpeg("camera.png"))
        _add(tar, "pics/readme.txt", b"hello")
    doc = {
        "@context": {"@vocab": "https://schema.org/", "cr": "http://mlcommons.org/croissant/"},
        "@type": "sc:Dataset", "name": "tiny",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "distribution": [
            {"@type": "cr:FileObject", "@id": "cover", "contentUrl": "cover.jpg",
             "encodingFormat": "image/jpeg"},
            {"@type": "cr:FileObject", "@id": "remote", "contentUrl":
             "https://example.com/big.jpg", "encodingFormat": "image/jpeg"},
            {"@type": "cr:FileObject", "@id": "meta", "contentUrl": "images/notes.csv",
             "encodingFormat": "text/csv"},
            {"@type": "cr:FileObject", "@id": "archive", "contentUrl": "extra.tar",
             "encodingFormat": "application/x-tar"},
            {"@type": "cr:FileSet", "@id": "in-archive", "containedIn": {"@id": "archive"},
             "includes": "pics/*.jpg"},
            {"@type": "cr:FileSet", "@id": "local", "includes": "images/*.jpg"},
        ]}
    (folder / "croissant.json").write_text(json.dumps(doc))
    return folder / "croissant.json"


def test_the_readers_map_urls_shard_metadata_and_croissant_files(tmp_path: Path) -> None:
    laion = make_img2dataset(tmp_path)
    with pytest.raises(InvalidInput, match="no 'path' column"):
        open_dataset(laion).items()  # without the image folder it is a plain manifest
    items = {i.key: i for i in open_dataset(laion, images_dir=tmp_path / "images").items()}
    assert items["https://img.example.com/coffee.png"].caption == "a coffee"
    for url in ("https://img.example.com/coffee.png", "https://img.example.com/horse.png",
                "https://cdn.example.net/camera"):
        assert read_item(items[url], max_bytes=10**8).data, url
    missing = read_item(items["https://gone.example.org/x.jpg"], max_bytes=10**8)
    assert missing.data is None and (missing.error or "").startswith("missing: no local copy")

    wds = open_dataset(make_webdataset(tmp_path))
    assert wds.kind == "webdataset"
    assert [(i.key, i.caption, i.url) for i in wds.items()] == [
        ("train-000.tar/000000000.jpg", "coffee cup", "https://a.example/c.jpg"),
        ("train-000.tar/000000001.jpg", "a horse", "https://b.example/h.jpg")]

    croissant = open_dataset(make_croissant(tmp_path))
    assert croissant.kind == "croissant"
    found = {i.key: i for i in croissant.items()}
    assert set(found) == {"cover.jpg", "https://example.com/big.jpg", "extra.tar/pics/camera.jpg",
                          "images/horse.jpg"}
    assert "no network" in (read_item(found["https://example.com/big.jpg"],
                                      max_bytes=10**8).error or "")
    assert read_item(found["extra.tar/pics/camera.jpg"], max_bytes=10**8).data
    (tmp_path / "plain.json").write_text('{"name": "not croissant"}')
    with pytest.raises(InvalidInput, match="not a Croissant dataset"):
        open_dataset(tmp_path / "plain.json")


def test_each_dataset_form_is_cleared(
    tmp_path: Path, db_url: str, session_factory: sessionmaker[Session], store: BlobStore
) -> None:
    scenario.import_catalog(session_factory, store)
    policies = load_policies(scenario.write_policies(tmp_path / "policies"))
    forms = {
        "img2dataset": (make_img2dataset(tmp_path), tmp_path / "images"),
        "webdataset": (make_webdataset(tmp_path), None),
        "croissant": (make_croissant(tmp_path), None),
    }
    verdicts = {}
    for name, (path, images) in forms.items():
        result = clearance.clear_dataset(
            session_factory, path, use="ai_training", licensee=scenario.LICENSEE, owner="ml",
            policies=policies, database_url=db_url, index_dir=tmp_path / "index",
            images_dir=images)
        verdicts[name] = {i["key"]: i["verdict"] for i in result.report["items"]}
    assert verdicts["img2dataset"] == {
        "https://img.example.com/coffee.png": "blocked", "https://img.example.com/horse.png":
        "clear", "https://cdn.example.net/camera": "clear",
        "https://gone.example.org/x.jpg": "error"}
    assert verdicts["webdataset"] == {"train-000.tar/000000000.jpg": "blocked",
                                      "train-000.tar/000000001.jpg": "clear"}
    assert verdicts["croissant"] == {"cover.jpg": "blocked", "https://example.com/big.jpg":
                                     "error", "extra.tar/pics/camera.jpg": "clear",
                                     "images/horse.jpg": "clear"}
