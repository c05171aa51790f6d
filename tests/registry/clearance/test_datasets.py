"""Dataset readers: folders, tar/zip, WebDataset shards, manifests; paths stay inside."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry.clearance.datasets import (
    compute_dataset_digest,
    dataset_digest,
    open_dataset,
    read_item,
)
from registry.errors import InvalidInput
from tests.photos import skimage_photo

PHOTO = skimage_photo("coffee.png").read_bytes()
OTHER = skimage_photo("rocket.jpg").read_bytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _items(dataset):  # type: ignore[no-untyped-def]
    return {item.key: item for item in dataset.items()}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_a_folder_is_walked_recursively_in_sorted_order_with_captions(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.png").write_bytes(PHOTO)
    (tmp_path / "one.jpg").write_bytes(OTHER)
    (tmp_path / "one.txt").write_text("a rocket on its pad")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    dataset = open_dataset(tmp_path)
    assert dataset.kind == "folder"
    items = dataset.items()
    assert [i.key for i in items] == ["b/two.png", "one.jpg"]
    assert items[1].caption == "a rocket on its pad"
    got = read_item(items[0], max_bytes=10**8)
    assert got.sha256 == _sha(PHOTO) and got.data == PHOTO


def test_a_symlink_escaping_the_folder_is_an_error_item_and_one_inside_is_read(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(PHOTO)
    data = tmp_path / "data"
    data.mkdir()
    (data / "real.jpg").write_bytes(OTHER)
    os.symlink(secret, data / "escape.png")
    os.symlink(data / "real.jpg", data / "alias.jpg")
    os.symlink(tmp_path, data / "loop")  # a directory symlink is not followed
    items = _items(open_dataset(data))
    assert set(items) == {"alias.jpg", "escape.png", "real.jpg"}
    escaped = read_item(items["escape.png"], max_bytes=10**8)
    assert escaped.data is None and "symlink escapes" in (escaped.error or "")
    assert read_item(items["alias.jpg"], max_bytes=10**8).data == OTHER


def test_tar_members_with_traversal_absolute_names_or_links_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "set.tar"
    with tarfile.open(path, "w") as tar:
        _add(tar, "ok/photo.png", PHOTO)
        _add(tar, "../evil.png", PHOTO)
        _add(tar, "/etc/evil.png", PHOTO)
        link = tarfile.TarInfo("ok/link.png")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    items = _items(open_dataset(path))
    assert read_item(items["ok/photo.png"], max_bytes=10**8).data == PHOTO
    for key, reason in (("../evil.png", "path traversal"), ("/etc/evil.png", "path traversal"),
                        ("ok/link.png", "link member")):
        got = read_item(items[key], max_bytes=10**8)
        assert got.data is None and reason in (got.error or ""), key
    assert not (tmp_path.parent / "evil.png").exists()


def test_compressed_tar_and_zip_archives_are_read_in_memory(tmp_path: Path) -> None:
    tgz = tmp_path / "set.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        _add(tar, "a.png", PHOTO)
        _add(tar, "b.jpg", OTHER)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x/a.png", PHOTO)
        z.writestr("../../up.png", PHOTO)
    tar_items = _items(open_dataset(tgz))
    assert read_item(tar_items["b.jpg"], max_bytes=10**8).sha256 == _sha(OTHER)
    zip_items = _items(open_dataset(archive))
    assert read_item(zip_items["x/a.png"], max_bytes=10**8).data == PHOTO
    assert "path traversal" in (read_item(zip_items["../../up.png"], max_bytes=10**8).error or "")


def test_webdataset_shards_group_samples_by_key_with_their_captions(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    for n in range(2):
        with tarfile.open(shards / f"train-{n:03d}.tar", "w") as tar:
            _add(tar, f"{n:04d}.jpg", OTHER if n else PHOTO)
            _add(tar, f"{n:04d}.txt", f"caption {n}".encode())
            _add(tar, f"{n:04d}.json", json.dumps({"n": n}).encode())
    dataset = open_dataset(shards)
    assert dataset.kind == "webdataset"
    items = dataset.items()
    assert [i.key for i in items] == ["train-000.tar/0000.jpg", "train-001.tar/0001.jpg"]
    assert [i.caption for i in items] == ["caption 0", "caption 1"]
    assert items[1].item_id == "train-001.tar/0001"
    pattern = open_dataset(str(shards / "train-{000..001}.tar"))
    assert [i.key for i in pattern.items()] == [i.key for i in items]


def test_manifests_in_csv_jsonl_and_parquet_resolve_paths_inside_their_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(PHOTO)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    outside.write_bytes(PHOTO)
    rows = [
        {"path": "img/a.png", "id": "1", "caption": "coffee"},
        {"path": "img/a.png", "id": "2", "caption": "again"},
        {"path": f"../{outside.name}", "id": "3", "caption": "outside"},
        {"path": "https://example.com/x.jpg", "id": "4", "caption": "remote"},
    ]
    (tmp_path / "m.csv").write_text(
        "path,id,caption\n" + "".join(f"{r['path']},{r['id']},{r['caption']}\n" for r in rows))
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet")
    for name in ("m.csv", "m.jsonl", "m.parquet"):
        dataset = open_dataset(tmp_path / name)
        assert dataset.kind == "manifest"
        items = dataset.items()
        assert [i.key for i in items] == ["img/a.png", "img/a.png#2", f"../{outside.name}",
                                          "https://example.com/x.jpg"], name
        assert items[0].caption == "coffee" and items[1].item_id == "2"
        assert read_item(items[0], max_bytes=10**8).data == PHOTO
        assert "outside the manifest" in (read_item(items[2], max_bytes=10**8).error or "")
        assert "remote URLs" in (read_item(items[3], max_bytes=10**8).error or "")
    outside.unlink()


def test_a_manifest_without_the_path_column_is_refused_with_the_columns(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("file,id\na.png,1\n")
    with pytest.raises(InvalidInput, match="no 'path' column"):
        open_dataset(tmp_path / "m.csv").items()
    items = open_dataset(tmp_path / "m.csv", path_column="file").items()
    assert items[0].key == "a.png"


def test_a_dataset_outside_the_allowed_roots_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(InvalidInput, match="outside the allowed dataset roots"):
        open_dataset(tmp_path / "elsewhere", allowed_roots=[root])
    with pytest.raises(InvalidInput, match="outside the allowed dataset roots"):
        open_dataset(root / ".." / "elsewhere", allowed_roots=[root])
    assert open_dataset(root, allowed_roots=[root]).kind == "folder"
    with pytest.raises(InvalidInput, match="no such file"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InvalidInput, match="not a dataset"):
        open_dataset(tmp_path / "notes.txt")


def test_an_item_over_the_byte_limit_is_an_error_but_still_hashed(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(PHOTO)
    item = open_dataset(tmp_path).items()[0]
    got = read_item(item, max_bytes=1000)
    assert got.data is None and "over the limit" in (got.error or "")
    assert got.sha256 == _sha(PHOTO)


def test_the_dataset_digest_ignores_order_and_changes_with_any_item(tmp_path: Path) -> None:
    assert dataset_digest(["b", "a"]) == dataset_digest(["a", "b"])
    (tmp_path / "a.png").write_bytes(PHOTO)
    (tmp_path / "b.jpg").write_bytes(OTHER)
    before = compute_dataset_digest(open_dataset(tmp_path), max_bytes=10**8)
    assert before == dataset_digest([_sha(PHOTO), _sha(OTHER)])
    (tmp_path / "b.jpg").write_bytes(OTHER[:-10])
    assert compute_dataset_digest(open_dataset(tmp_path), max_bytes=10**8) != before


def test_a_hugging_face_imagefolder_reads_captions_and_its_metadata_is_not_an_item(
    tmp_path: Path,
) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.png").write_bytes(PHOTO)
    (tmp_path / "train" / "sub").mkdir()
    (tmp_path / "train" / "sub" / "b.jpg").write_bytes(OTHER)
    (tmp_path / "train" / "metadata.jsonl").write_text(
        json.dumps({"file_name": "a.png", "text": "a cup of coffee", "id": 7}) + "\n"
        + json.dumps({"file_name": "sub/b.jpg", "text": "a rocket"}) + "\n")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "c.png").write_bytes(PHOTO)
    (tmp_path / "test" / "metadata.csv").write_text("file_name,caption\nc.png,\"coffee, again\"\n")
    items = _items(open_dataset(tmp_path))
    assert set(items) == {"train/a.png", "train/sub/b.jpg", "test/c.png"}
    assert items["train/a.png"].caption == "a cup of coffee"
    assert items["train/a.png"].item_id == "7"
    assert items["train/sub/b.jpg"].caption == "a rocket"
    assert items["test/c.png"].caption == "coffee, again"


def test_a_broken_imagefolder_metadata_file_names_the_file_and_row(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PHOTO)
    (tmp_path / "metadata.jsonl").write_text('{"text": "no file name"}\n')
    with pytest.raises(InvalidInput, match=r"metadata.jsonl: row 1 has no 'file_name'"):
        open_dataset(tmp_path).items()


def test_a_manifest_may_name_images_under_an_extra_allowed_root(tmp_path: Path) -> None:
    images = tmp_path / "cache"
    images.mkdir()
    (images / "a.png").write_bytes(PHOTO)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "m.jsonl").write_text(json.dumps({"path": str(images / "a.png")}) + "\n")
    refused = open_dataset(lists / "m.jsonl").items()[0]
    assert "outside the manifest" in (read_item(refused, max_bytes=10**8).error or "")
    allowed = open_dataset(lists / "m.jsonl", item_roots=[images]).items()[0]
    assert read_item(allowed, max_bytes=10**8).data == PHOTO
    with pytest.raises(InvalidInput, match="allowed root is not a folder"):
        open_dataset(lists / "m.jsonl", item_roots=[tmp_path / "missing"])


def test_a_manifest_row_can_name_a_member_of_an_archive(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "s.tar.gz", "w:gz") as tar:
        _add(tar, "x/a.png", PHOTO)
        link = tarfile.TarInfo("x/link.png")
        link.type = tarfile.SYMTYPE
        link.linkname = "a.png"
        tar.addfile(link)
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as z:
        z.writestr("b.jpg", OTHER)
    rows = ["s.tar.gz::x/a.png", "s.zip::b.jpg", "s.tar.gz::../x/a.png", "s.tar.gz::x/link.png"]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"path": r}) + "\n" for r in rows))
    items = _items(open_dataset(tmp_path / "m.jsonl"))
    assert read_item(items["s.tar.gz::x/a.png"], max_bytes=10**8).data == PHOTO
    assert read_item(items["s.zip::b.jpg"], max_bytes=10**8).data == OTHER
    assert "path traversal" in (read_item(items["s.tar.gz::../x/a.png"], max_bytes=10**8).error
                                or "")
    assert "not a regular file" in (read_item(items["s.tar.gz::x/link.png"], max_bytes=10**8)
                                    .error or "")
