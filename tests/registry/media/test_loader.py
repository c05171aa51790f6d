"""Safe media loading: every kind of bad input gets a clear, named error."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from registry.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from registry.media import load_image, probe
from tests.factories import bad_file, bomb_png, photo_bytes
from tests.photos import SHARED_FIXTURES, skimage_photo

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


# --- keep_alpha: pictures with transparency come back as RGBA (issue 11) ---------------------


def _png(image: Image.Image, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **params)
    return out.getvalue()


def _see_through_cat() -> Image.Image:
    """A real photo with an alpha gradient, fully transparent on the left edge."""
    cat = Image.open(skimage_photo("chelsea.png")).convert("RGBA")  # 451 x 300
    cat.putalpha(Image.linear_gradient("L").rotate(90).resize(cat.size))
    return cat


def test_keep_alpha_returns_an_rgba_png_with_its_alpha_and_without_it_rgb() -> None:
    cat = _see_through_cat()
    assert cat.getchannel("A").getextrema() == (0, 255)
    data = _png(cat)
    kept = load_image(data, keep_alpha=True)
    assert kept.mode == "RGBA" and kept.tobytes() == cat.tobytes()
    assert load_image(data).mode == "RGB"


def test_keep_alpha_turns_a_transparent_palette_colour_into_alpha() -> None:
    path = SHARED_FIXTURES / "c2pa" / "libpng-test.png"  # a real P-mode PNG with tRNS
    with Image.open(path) as source:
        assert source.mode == "P" and "transparency" in source.info
        expected = source.convert("RGBA")
    kept = load_image(path, keep_alpha=True)
    assert kept.mode == "RGBA" and kept.tobytes() == expected.tobytes()
    assert kept.getchannel("A").getextrema()[0] == 0


def test_keep_alpha_turns_grey_with_alpha_into_rgba() -> None:
    grey = _see_through_cat().convert("LA")
    kept = load_image(_png(grey), keep_alpha=True)
    assert kept.mode == "RGBA" and kept.tobytes() == grey.convert("RGBA").tobytes()


def test_keep_alpha_leaves_opaque_pictures_rgb_and_still_drafts_jpeg() -> None:
    data = skimage_photo("rocket.jpg").read_bytes()
    full = load_image(data, keep_alpha=True)
    small = load_image(data, keep_alpha=True, draft_size=(64, 64))
    assert full.mode == small.mode == "RGB"
    assert full.tobytes() == load_image(data).tobytes()
    assert 64 <= small.width < full.width
    assert load_image(photo_bytes("coffee.png"), keep_alpha=True).mode == "RGB"


def test_keep_alpha_applies_exif_orientation() -> None:
    cat = _see_through_cat()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    kept = load_image(_png(cat, exif=exif), keep_alpha=True)
    assert kept.mode == "RGBA" and kept.size == (300, 451)
    assert kept.tobytes() == cat.transpose(Image.Transpose.ROTATE_270).tobytes()


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_keep_alpha_rejects_bad_input_with_the_same_errors(case: str) -> None:
    name, data = bad_file(case)
    error, words = EXPECTED[case]
    with pytest.raises(error, match=words) as info:
        load_image(data, name=name, keep_alpha=True)
    assert name in str(info.value)


def test_keep_alpha_refuses_a_real_decompression_bomb_and_a_byte_limit() -> None:
    with pytest.raises(MediaTooLarge, match="144000000 pixels"):
        load_image(bomb_png(), name="bomb.png", keep_alpha=True)
    with pytest.raises(MediaTooLarge, match="over the limit of 1000 bytes"):
        load_image(_png(_see_through_cat()), name="big.png", max_bytes=1000, keep_alpha=True)


def test_keep_alpha_refuses_a_truncated_transparent_png() -> None:
    data = _png(_see_through_cat())
    with pytest.raises(CorruptMedia, match="corrupt or truncated"):
        load_image(data[: len(data) // 2], name="half.png", keep_alpha=True)
