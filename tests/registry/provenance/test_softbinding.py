"""The soft binding we sign: ISCC Content-Code Image (io.iscc.v0) against iscc-core's own test
vectors and implementation, and the c2pa.soft-binding assertion in a real signed file."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import iscc_core
import iscc_lib
import pytest
from PIL import Image

from registry.errors import InvalidInput
from registry.provenance import sign_media
from registry.provenance.c2pa_adapter import read_manifest
from registry.provenance.keys import StudioKeys
from registry.provenance.softbinding import (
    ISCC_ALG,
    PDQ_ALG,
    SOFT_BINDING_LABEL,
    iscc_code_bytes,
    iscc_code_from_value,
    iscc_image_code,
    iscc_pixels,
    iscc_value,
)
from tests.photos import photo_paths, skimage_photo

VECTORS = json.loads(
    (Path(iscc_core.__file__).parent / "data.json").read_text())["gen_image_code_v0"]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_our_iscc_library_matches_iscc_cores_test_vectors(name: str) -> None:
    pixels, bits = VECTORS[name]["inputs"]
    assert iscc_lib.gen_image_code_v0(pixels, bits)["iscc"] == VECTORS[name]["outputs"]["iscc"]


def test_the_codes_we_write_equal_iscc_cores_on_real_photos() -> None:
    photos = photo_paths()
    assert len(photos) >= 14
    for path in photos:
        image = Image.open(path).convert("RGB")
        ours = iscc_image_code(image)
        reference = iscc_core.gen_image_code_v0(iscc_pixels(image), 64)["iscc"]
        assert ours == reference, path.name
        assert iscc_core.iscc_validate(ours, strict=True)


def test_the_value_is_base64_of_the_iscc_unit_and_reads_back() -> None:
    code = iscc_image_code(Image.open(skimage_photo("coffee.png")).convert("RGB"))
    value = iscc_value(code)
    unit = base64.b64decode(value)
    assert len(unit) == 10 and unit == iscc_code_bytes(code)
    assert iscc_code_from_value(value) == code
    assert iscc_code_from_value(code) == code  # the ISCC text is accepted too
    for bad in ("not base64!", base64.b64encode(b"\x00" * 10).decode(), "ISCC:$$"):
        with pytest.raises(InvalidInput):
            iscc_code_from_value(bad)


def test_signed_images_carry_the_iscc_soft_binding_and_nothing_of_ours(
        studio_keys: StudioKeys) -> None:
    source = skimage_photo("chelsea.png")
    signed = sign_media(source, keys=studio_keys)
    outcome = read_manifest(signed.data, "image/png", anchors_pem=studio_keys.root_pem)
    assert outcome.state == "Trusted"
    store = outcome.store or {}
    manifest = store["manifests"][store["active_manifest"]]
    bindings = [a["data"] for a in manifest["assertions"] if a["label"] == SOFT_BINDING_LABEL]
    assert len(bindings) == 1
    assert bindings[0]["alg"] == ISCC_ALG
    value = bindings[0]["blocks"][0]["value"]
    expected = iscc_image_code(Image.open(source).convert("RGB"))
    assert iscc_code_from_value(value) == expected == signed.iscc
    # Our PDQ hashes are kept for the repository, never written into the manifest.
    assert PDQ_ALG not in json.dumps(manifest)
    assert {f.alg for f in signed.fingerprints} == {PDQ_ALG}
