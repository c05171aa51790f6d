"""Plain factory functions and bad-input makers shared by the tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from registry.catalog import BlobStore, Franchise, Rightsholder, register_asset
from registry.catalog.models import Asset
from registry.schema import metadata
from tests.photos import skimage_photo


def make_rightsholder(session: Session, name: str = "Northwind Games") -> Rightsholder:
    row = Rightsholder(name=name)
    session.add(row)
    session.flush()
    return row


def make_franchise(session: Session, holder: Rightsholder, name: str = "Skyreach") -> Franchise:
    row = Franchise(name=name, rightsholder=holder)
    session.add(row)
    session.flush()
    return row


def photo_bytes(name: str = "astronaut.png") -> bytes:
    return skimage_photo(name).read_bytes()


def make_asset(
    session: Session,
    store: BlobStore,
    *,
    photo: str = "astronaut.png",
    holder: Rightsholder | None = None,
    franchise: Franchise | None = None,
    tags: tuple[str, ...] = (),
) -> Asset:
    holder = holder or make_rightsholder(session)
    asset, _ = register_asset(
        session,
        store=store,
        data=photo_bytes(photo),
        name=photo,
        rightsholder=holder,
        franchise=franchise,
        tags=tags,
    )
    return asset


# --- bad input -----------------------------------------------------------------------------------


def truncated_jpeg() -> bytes:
    data = skimage_photo("rocket.jpg").read_bytes()
    return data[: len(data) // 2]


def bomb_png(side: int = 12_000) -> bytes:
    """A real, decodable 1-bit PNG of side x side pixels (144 MP at 12,000) in a few KB."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG")
    return out.getvalue()


def header_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims 10 GP: rejected before a single pixel is decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def bmp_image() -> bytes:
    out = io.BytesIO()
    Image.open(skimage_photo("coffee.png")).convert("RGB").save(out, "BMP")
    return out.getvalue()


TEXT_AS_PNG = b"this is a text file, not a picture\n"
SVG_AS_PNG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'

BAD_FILES: dict[str, tuple[str, bytes]] = {
    # case -> (file name, bytes)
    "truncated_jpeg": ("truncated.jpg", b""),  # filled lazily by bad_file()
    "text_named_png": ("notes.png", TEXT_AS_PNG),
    "svg_named_png": ("vector.png", SVG_AS_PNG),
    "zero_bytes": ("empty.jpg", b""),
    "unknown_format_bmp": ("picture.bmp", b""),
    "header_bomb": ("bomb-header.png", b""),
}


def bad_file(case: str) -> tuple[str, bytes]:
    name, data = BAD_FILES[case]
    if case == "truncated_jpeg":
        data = truncated_jpeg()
    elif case == "unknown_format_bmp":
        data = bmp_image()
    elif case == "header_bomb":
        data = header_bomb_png()
    return name, data


def write_bad_file(folder: Path, case: str) -> Path:
    name, data = bad_file(case)
    path = folder / name
    path.write_bytes(data)
    return path


def snapshot(factory: sessionmaker[Session], store: BlobStore) -> dict[str, object]:
    """Row counts of every table and the blob files: what 'nothing changed' is checked against."""
    with factory() as session:
        counts = {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in metadata.sorted_tables
        }
    return {"rows": counts, "blobs": [str(p) for p in store.files()]}
