"""Safe media loading: every kind of bad input gets a clear, named error."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from registry.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from registry.media import load_image, probe
from tests.factories import bad_file, bomb_png, photo_bytes
from tests.photos import skimage_photo

EXPECTED = {
    "truncated_jpeg": (CorruptMedia, "truncated"),
    "text_named_png": (UnsupportedMedia, "not a recognised image format"),
    "svg_named_png": (UnsupportedMedia, "not a recognised image format"),
    "zero_bytes": (CorruptMedia, "empty file"),
    "unknown_format_bmp": (UnsupportedMedia, "format BMP is not allowed"),
    "header_bomb": (MediaTooLarge, "decompression bomb"),
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_input_is_rejected_with_the_file_name_and_reason(case: str) -> None:
    name, data = bad_file(case)
    error, words = EXPECTED[case]
    with pytest.raises(error) as info:
        probe(data, name=name)
    assert name in str(info.value)
    assert words in str(info.value)
    with pytest.raises(error):
        load_image(data, name=name)


def test_a_real_decompression_bomb_is_refused_before_decoding() -> None:
    data = bomb_png()
    assert len(data) < 100_000
    with pytest.raises(MediaTooLarge, match="144000000 pixels"):
        probe(data, name="bomb.png", max_pixels=100_000_000)


def test_files_over_the_byte_limit_are_refused() -> None:
    with pytest.raises(MediaTooLarge, match="over the limit of 1000 bytes"):
        probe(photo_bytes(), name="big.png", max_bytes=1000)


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CorruptMedia, match="cannot read file"):
        probe(tmp_path / "nope.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "AVIF"])
def test_allowed_formats_load_as_rgb(fmt: str) -> None:
    out = io.BytesIO()
    Image.open(skimage_photo("chelsea.png")).convert("RGB").save(out, fmt)
    info = probe(out.getvalue(), name=f"cat.{fmt.lower()}")
    assert (info.kind, info.width, info.height) == ("image", 451, 300)
    image = load_image(out.getvalue())
    assert image.mode == "RGB" and image.size == (451, 300)


def test_exif_orientation_is_applied() -> None:
    source = Image.open(skimage_photo("chelsea.png")).convert("RGB")  # 451 x 300
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = io.BytesIO()
    source.save(out, "JPEG", exif=exif)
    assert load_image(out.getvalue()).size == (300, 451)


def test_draft_mode_decodes_jpeg_at_reduced_size() -> None:
    data = skimage_photo("rocket.jpg").read_bytes()
    full = load_image(data)
    small = load_image(data, draft_size=(64, 64))
    assert small.width < full.width and small.width >= 64


def test_the_format_is_sniffed_not_taken_from_the_name() -> None:
    info = probe(photo_bytes("coffee.png"), name="coffee.jpg")
    assert info.media_type == "image/png"
