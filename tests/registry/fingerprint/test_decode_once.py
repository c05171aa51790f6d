"""`decode_visible` decodes a picture with transparency once (the loader keeps its alpha), and
the fingerprints of transparent art are exactly those of the former double decode (issue 11):
real Wesnoth portraits (RGBA, and a palette PNG with a transparent colour), a real palette PNG
from the shared fixtures, an EXIF-rotated portrait, and an opaque JPEG."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageOps

from registry.fingerprint.features import (
    CATALOG_DECODE_PX,
    AssetFeatures,
    decode_visible,
    draft_request,
    has_alpha,
    image_features,
    media_features,
    visible_content,
)
from registry.media.loader import load_image
from tests.art import CATALOG_PORTRAITS, portrait, require_art
from tests.photos import SHARED_FIXTURES, skimage_photo

# The old path's RGB decode of a palette PNG with a transparent colour warns (the new one
# converts such pictures to RGBA directly).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Palette images with Transparency expressed in bytes:UserWarning")


def _old_decode_visible(data: bytes, *, name: str, draft_size: tuple[int, int] | None
                        ) -> tuple[Image.Image, Image.Image | None]:
    """decode_visible as it was: the loader's RGB decode, then for a picture with
    transparency a second decode with Pillow (EXIF orientation, `visible_content`)."""
    image = load_image(data, name=name, draft_size=draft_size)
    with Image.open(io.BytesIO(data)) as header:
        transparent = has_alpha(header)
    if not transparent:
        return image, None
    with Image.open(io.BytesIO(data)) as again:
        again.load()
        return visible_content(ImageOps.exif_transpose(again))


def _old_media_features(data: bytes, *, name: str) -> AssetFeatures:
    """media_features (image branch) over the old decode."""
    with Image.open(io.BytesIO(data)) as header:
        original = header.size
    image, mask = _old_decode_visible(data, name=name,
                                      draft_size=draft_request(original, CATALOG_DECODE_PX))
    if (image.width - image.height) * (original[0] - original[1]) < 0:
        original = (original[1], original[0])
    return image_features(image, scale_to=original, mask=mask)


def _portrait(name: str) -> bytes:
    require_art()
    return portrait(name).read_bytes()


def _rotated_portrait() -> bytes:
    require_art()
    with Image.open(portrait("goblins/impaler")) as art:  # 400 x 500 RGBA
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        out = io.BytesIO()
        art.save(out, "PNG", exif=exif)
    return out.getvalue()


def _opaque_jpeg() -> bytes:
    out = io.BytesIO()
    Image.open(skimage_photo("chelsea.png")).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


CASES: dict[str, tuple[Callable[[], bytes], bool]] = {  # name -> (bytes, has transparency)
    "rgba-portrait": (lambda: _portrait(CATALOG_PORTRAITS[0]), True),
    "palette-portrait": (lambda: _portrait("monsters/yeti"), True),  # P + tRNS
    "palette-fixture": (lambda: (SHARED_FIXTURES / "c2pa" / "libpng-test.png").read_bytes(),
                        True),
    "exif-rotated-portrait": (_rotated_portrait, True),
    "opaque-jpeg": (_opaque_jpeg, False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_decode_visible_gives_the_pixels_and_mask_of_the_old_double_decode(case: str) -> None:
    make, transparent = CASES[case]
    data = make()
    for draft in (None, (256, 256)):
        image, mask = decode_visible(data, name=case, draft_size=draft)
        old_image, old_mask = _old_decode_visible(data, name=case, draft_size=draft)
        assert image.mode == old_image.mode == "RGB" and image.size == old_image.size
        assert image.tobytes() == old_image.tobytes()
        assert (mask is None) == (old_mask is None) == (not transparent)
        if mask is not None and old_mask is not None:
            assert mask.tobytes() == old_mask.tobytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_media_features_are_those_of_the_old_double_decode(case: str) -> None:
    data = CASES[case][0]()
    new = media_features(data, name=case, kind="image")
    old = _old_media_features(data, name=case)
    assert new.hashes == old.hashes and len(new.hashes) > 0
    assert any(h.region.startswith("art/") for h in new.hashes) == CASES[case][1]
    assert len(new.keypoint_sets) == len(old.keypoint_sets) == 1
    for a, b in zip(new.keypoint_sets, old.keypoint_sets, strict=True):
        assert (a.version, a.time_s) == (b.version, b.time_s)
        for part in ("sift", "orb", "orb_mirror"):
            ka, kb = getattr(a.keys, part), getattr(b.keys, part)
            assert (ka.width, ka.height) == (kb.width, kb.height)
            assert np.array_equal(ka.xy, kb.xy)
            assert np.array_equal(ka.descriptors, kb.descriptors)
    assert len(new.keypoint_sets[0].keys.sift.xy) > 0


def test_a_transparent_picture_is_opened_once(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _portrait(CATALOG_PORTRAITS[0])
    opened = []
    real_open = Image.open

    def counting_open(*args: object, **kwargs: object) -> Image.Image:
        opened.append(args[0])
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "open", counting_open)
    _image, mask = decode_visible(data, name="portrait.png")
    assert mask is not None and len(opened) == 1
