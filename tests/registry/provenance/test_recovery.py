"""Verify recovers a stripped manifest from the manifest repository: real photos signed with real
c2pa, the manifest stripped by re-encoding with Pillow (JPEG, PNG, WebP), a crop to 80% and a
resize to 50%; files never signed are never claimed."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy.orm import Session

from registry.catalog import BlobStore
from registry.policy import load_policies
from registry.provenance.keys import StudioKeys
from registry.provenance.repository import ManifestIndex, find_by_content
from registry.provenance.service import (
    ingredient_from_asset,
    sign_generated,
    verify_with_catalog,
)
from tests.factories import make_asset, make_franchise, make_rightsholder
from tests.photos import SHARED_FIXTURES, photo_paths, skimage_photo
from tests.registry.provenance.test_service import POLICY

SIGNED_PHOTOS = ["rocket.jpg", "astronaut.png", "motorcycle_left.png", "camera.png"]
NEVER_SIGNED = ["horse.png", "moon.png", "page.png", "hubble_deep_field.jpg"]
# More pictures that are in no signed output (motorcycle_right.png is left out: it is the other
# half of the stereo pair of motorcycle_left.png, the same scene).
STRANGERS = ["cell.png", "clock_motion.png", "color.png", "ihc.png", "logo.png",
             "microaneurysms.png", "phantom.png", "retina.jpg", "text.png", "chessboard_RGB.png"]
PDQ_STRANGERS = ["labelme-subset/q0003.jpg", "labelme-subset/q0004.jpg", "misc-images/small.jpg",
                 "misc-images/wee.jpg"]


def _save(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    # PNG at zlib level 1: the same pixels as the default level 6, a quarter of the encoding
    # time (the 1,000-output test saves about a thousand PNGs).
    image.convert("RGB").save(out, fmt, **({"quality": 85} if fmt != "PNG"
                                           else {"compress_level": 1}))
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _crop(image: Image.Image, keep: float) -> Image.Image:
    w, h = round(image.width * keep), round(image.height * keep)
    x, y = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((x, y, x + w, y + h))


def strip_variants(signed: bytes) -> dict[str, bytes]:
    """The signed file after editors that drop the manifest."""
    image = _open(signed)
    return {
        "jpeg": _save(image, "JPEG"),
        "png": _save(image, "PNG"),
        "webp": _save(image, "WEBP"),
        "crop_80": _save(_crop(image, 0.8), "JPEG"),
        "resize_50": _save(image.resize((image.width // 2, image.height // 2),
                                        Image.Resampling.LANCZOS), "JPEG"),
    }


def test_a_stripped_image_is_recovered_with_its_original_manifest(
        session: Session, store: BlobStore, studio_keys: StudioKeys, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "harbor.yaml").write_text(POLICY)
    holder = make_rightsholder(session, "Meridian Pictures")
    harbor = make_franchise(session, holder, "Harbor Lights")
    cat = make_asset(session, store, photo="chelsea.png", holder=holder, franchise=harbor)
    anchors = studio_keys.root_pem
    index = ManifestIndex()
    originals = {}
    for n, photo in enumerate(SIGNED_PHOTOS):
        ingredients = [ingredient_from_asset(store, cat)] if n == 0 else []
        outcome = sign_generated(session, skimage_photo(photo), keys=studio_keys, name=photo,
                                 model="lumen-diffusion-2", ingredients=ingredients,
                                 policies=load_policies(tmp_path / "p"), actor="partner")
        original = verify_with_catalog(session, outcome.signed.data, anchors_pem=anchors,
                                       manifest_index=index)
        assert original.state == "valid" and original.extra["recovered"] is None
        originals[photo] = (outcome.signed, original)

    for photo, (signed, original) in originals.items():
        for how, data in strip_variants(signed.data).items():
            result = verify_with_catalog(session, data, anchors_pem=anchors, name=f"{how}.jpg",
                                         manifest_index=index)
            assert result.state == "no_manifest", (photo, how)
            rec = result.extra["recovered"]
            assert rec is not None, (photo, how)
            assert rec["manifest_id"] == signed.manifest_label, (photo, how)
            assert "this is Clearhouse Studio's generated image signed on" in rec["message"]
            assert "by Clearhouse Studio C2PA Signer; its manifest was removed" in rec["message"]
            assert rec["message"] in result.message
            assert rec["validation"]["state"] == "valid"
            assert rec["signer"]["trusted"] is True
            assert rec["actions"] == list(original.actions)
            assert rec["training_mining"] == original.training_mining.as_dict()  # type: ignore[union-attr]
            assert [i["title"] for i in rec["ingredients"]] == [
                i["title"] for i in original.ingredients]
            assert 50 <= rec["match"]["similarityScore"] <= 100
    # The catalog ingredient is summarised the way a partner may see it.
    first = verify_with_catalog(session, strip_variants(originals["rocket.jpg"][0].data)["png"],
                                anchors_pem=anchors, manifest_index=index)
    ingredient = first.extra["recovered"]["ingredients"][0]
    assert ingredient["asset"] == {"asset_id": cat.id, "title": cat.title,
                                   "franchise": "Harbor Lights",
                                   "rightsholder": "Meridian Pictures"}
    assert first.extra["recovered"]["training_mining"]["uses"]["ai_training"]["use"] == "allowed"


def test_files_never_signed_are_not_recovered_and_no_claim_is_made(
        session: Session, studio_keys: StudioKeys) -> None:
    index = ManifestIndex()
    for photo in SIGNED_PHOTOS:
        sign_generated(session, skimage_photo(photo), keys=studio_keys, name=photo)
    for photo in NEVER_SIGNED:
        result = verify_with_catalog(session, skimage_photo(photo), anchors_pem=None,
                                     manifest_index=index)
        assert result.state == "no_manifest"
        assert result.extra["recovered"] is None
        assert result.message == "no C2PA manifest is embedded in this file"
        assert "Clearhouse Studio" not in str(result.as_dict())


def _generated(seed: int, size: int = 192) -> Image.Image:
    """A stand-in for a model's output: smooth random colour fields with random shapes."""
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize((size, size), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        x0, y0 = (int(v) for v in rng.integers(0, size - 20, 2))
        x1, y1 = x0 + int(rng.integers(10, 90)), y0 + int(rng.integers(10, 90))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(1))


@pytest.mark.slow
# 1,000 signatures once is enough: the lookup is the same on PostgreSQL.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_thousand_signed_outputs_give_no_wrong_recovery(
        session: Session, studio_keys: StudioKeys) -> None:
    photos = [p for p in photo_paths() if p.name not in NEVER_SIGNED]
    signed: list[tuple[str, bytes]] = []
    for path in photos:  # the real photos, signed as they are
        signed.append((str(sign_generated(session, path, keys=studio_keys,
                                          name=path.name).signed.manifest_label),
                       path.read_bytes()))
    seed = 0
    while len(signed) < 1000:
        seed += 1
        data = _save(_generated(seed), "PNG")
        outcome = sign_generated(session, data, keys=studio_keys, name=f"gen-{seed}.png")
        signed.append((str(outcome.signed.manifest_label), outcome.signed.data))
    assert len(signed) == 1000
    index = ManifestIndex()
    verdicts: Counter[str] = Counter()
    # Every real photo and every 20th generated output, stripped 5 ways: its own manifest first.
    probes = signed[:len(photos)] + signed[len(photos)::20]
    for manifest_id, data in probes:
        for how, stripped in strip_variants(data).items():
            found = find_by_content(session, index, stripped, image=_open(stripped))
            if not found:
                verdicts[f"missed {how}"] += 1
            elif found[0].manifest_id != manifest_id:
                verdicts["wrong"] += 1
            else:
                verdicts["right"] += 1
    # Photos never signed (and their edits) are never claimed.
    strangers = [skimage_photo(p) for p in NEVER_SIGNED + STRANGERS] + [
        SHARED_FIXTURES / "pdq" / p for p in PDQ_STRANGERS]
    for path in strangers:
        for how, stripped in strip_variants(_save(_open(path.read_bytes()), "PNG")).items():
            if find_by_content(session, index, stripped, image=_open(stripped)):
                verdicts[f"false claim {path.name} {how}"] += 1
    print(dict(verdicts))
    assert verdicts["wrong"] == 0
    assert not [k for k in verdicts if k.startswith("false claim")], verdicts
    assert verdicts["right"] == 5 * len(probes), verdicts
