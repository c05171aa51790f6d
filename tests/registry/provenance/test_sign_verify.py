"""Signing real photos as generated media, verifying them, and tampering with them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from registry.errors import CorruptMedia, InvalidInput, MediaTooLarge, UnsupportedMedia
from registry.provenance import (
    IngredientSpec,
    Permission,
    StudioKeys,
    UsePermission,
    sign_media,
    verify_media,
)
from registry.provenance.sign import TRAINED_ALGORITHMIC_MEDIA
from tests.factories import truncated_jpeg
from tests.photos import skimage_photo
from tests.registry.provenance.helpers import (
    TEST_TRUST_BUNDLE,
    change_jpeg_pixels,
    cut_png_manifest,
    mp4_clip,
    swap_certificate,
    webp_photo,
)


def _ingredient(name: str, asset_id: int, relationship: str = "componentOf") -> IngredientSpec:
    data = skimage_photo(name).read_bytes()
    return IngredientSpec(title=name, data=data, media_type="image/png",
                          sha256=hashlib.sha256(data).hexdigest(), relationship=relationship,
                          asset_id=asset_id)


TRAINING = {
    "ai_training": UsePermission("ai_training", Permission.notAllowed),
    "ai_generative_training": UsePermission("ai_generative_training", Permission.notAllowed),
    "ai_inference": UsePermission("ai_inference", Permission.allowed),
    "data_mining": UsePermission("data_mining", Permission.constrained, "ask licensing"),
}


@pytest.fixture(scope="module")
def signed_jpeg(studio_keys: StudioKeys) -> bytes:
    return sign_media(
        skimage_photo("rocket.jpg"), keys=studio_keys, model="lumen-diffusion-2",
        prompt="a rocket at dawn",
        ingredients=[_ingredient("coffee.png", 11), _ingredient("chelsea.png", 12, "inputTo")],
        training=TRAINING,
    ).data


def test_a_real_photo_signed_with_two_ingredients_verifies_valid_and_trusted_as_given(
    signed_jpeg: bytes, studio_keys: StudioKeys
) -> None:
    result = verify_media(signed_jpeg, anchors_pem=studio_keys.root_pem)
    assert result.state == "valid" and result.trusted
    assert result.codes == ()
    assert result.signer is not None and result.signer["trusted"]
    assert result.signer["common_name"] == studio_keys.signing_cert.subject.rfc4514_string(
        ).split("CN=")[1].split(",")[0]
    assert result.actions == ({"action": "c2pa.created",
                               "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                               "softwareAgent": "lumen-diffusion-2"},)
    assert result.training_mining is not None
    assert result.training_mining.uses == TRAINING
    assert result.training_mining.assertions == ("cawg.training-mining",)
    assert [(i["title"], i["relationship"], i["asset_id"]) for i in result.ingredients] == [
        ("coffee.png", "componentOf", 11), ("chelsea.png", "inputTo", 12)]
    assert result.ingredients[0]["sha256"] == hashlib.sha256(
        skimage_photo("coffee.png").read_bytes()).hexdigest()
    assert result.generation == {"model": "lumen-diffusion-2", "prompt": "a rocket at dawn"}


def test_a_trust_bundle_without_the_studio_root_says_valid_signature_but_untrusted(
    signed_jpeg: bytes,
) -> None:
    result = verify_media(signed_jpeg, anchors_pem=TEST_TRUST_BUNDLE.read_bytes())
    assert result.state == "untrusted"
    assert result.codes == ("signingCredential.untrusted",)
    assert result.signer is not None and not result.signer["trusted"]
    assert "signature valid but untrusted" in result.message
    assert "does not chain to a configured trust anchor" in result.message


def test_the_input_file_is_left_unchanged_and_the_output_still_decodes(
    tmp_path: Path, studio_keys: StudioKeys
) -> None:
    src = tmp_path / "gen.jpg"
    src.write_bytes(skimage_photo("rocket.jpg").read_bytes())
    before = src.read_bytes()
    signed = sign_media(src, keys=studio_keys).data
    assert src.read_bytes() == before and signed != before
    from registry.media import load_image

    assert load_image(signed).size == load_image(before).size


def test_changed_image_bytes_are_invalid_with_the_data_hash_code(
    signed_jpeg: bytes, studio_keys: StudioKeys
) -> None:
    result = verify_media(change_jpeg_pixels(signed_jpeg), anchors_pem=studio_keys.root_pem)
    assert result.state == "invalid"
    assert "assertion.dataHash.mismatch" in result.codes
    assert "changed after signing" in result.message


def test_a_cut_manifest_is_invalid_with_a_code_and_a_reason(studio_keys: StudioKeys) -> None:
    signed = sign_media(skimage_photo("coffee.png"), keys=studio_keys).data
    result = verify_media(cut_png_manifest(signed), anchors_pem=studio_keys.root_pem)
    assert result.state == "invalid"
    assert result.codes == ("general.error",)
    assert "malformed" in result.message and "CBOR" in result.message


def test_a_swapped_certificate_is_invalid_with_the_claim_signature_code(
    signed_jpeg: bytes, studio_keys: StudioKeys
) -> None:
    result = verify_media(swap_certificate(signed_jpeg, studio_keys),
                          anchors_pem=studio_keys.root_pem)
    assert result.state == "invalid"
    assert "claimSignature.mismatch" in result.codes
    assert "claim signature does not match" in result.message


def test_stripping_the_manifest_leaves_no_manifest(studio_keys: StudioKeys) -> None:
    from tests.registry.provenance.helpers import png_chunks

    signed = sign_media(skimage_photo("coffee.png"), keys=studio_keys).data
    offset, _, n = next(c for c in png_chunks(signed) if c[1] == b"caBX")
    result = verify_media(signed[:offset] + signed[offset + 12 + n:], anchors_pem=None)
    assert result.state == "no_manifest"


@pytest.mark.parametrize("fmt", ["png", "webp", "mp4"])
def test_png_webp_and_mp4_sign_and_verify(
    fmt: str, tmp_path: Path, studio_keys: StudioKeys
) -> None:
    source = {"png": lambda: skimage_photo("astronaut.png"),
              "webp": lambda: webp_photo(tmp_path),
              "mp4": lambda: mp4_clip(tmp_path)}[fmt]()
    signed = sign_media(source, keys=studio_keys, model="m", training=TRAINING)
    assert signed.media_type == {"png": "image/png", "webp": "image/webp",
                                 "mp4": "video/mp4"}[fmt]
    result = verify_media(signed.data, anchors_pem=studio_keys.root_pem)
    assert result.state == "valid", result.message
    assert result.training_mining is not None and result.training_mining.uses == TRAINING


def test_an_unsigned_photo_has_no_manifest(studio_keys: StudioKeys) -> None:
    result = verify_media(skimage_photo("rocket.jpg"), anchors_pem=studio_keys.root_pem)
    assert result.state == "no_manifest" and result.codes == ()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"just some text, not an image\n", UnsupportedMedia),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>", UnsupportedMedia),
        (truncated_jpeg(), CorruptMedia),
        (b"", CorruptMedia),
    ],
)
def test_non_media_and_corrupt_files_are_the_callers_error(
    data: bytes, error: type[Exception], studio_keys: StudioKeys
) -> None:
    with pytest.raises(error):
        verify_media(data, anchors_pem=studio_keys.root_pem)
    with pytest.raises(error):
        sign_media(data, keys=studio_keys)


def test_limits_apply_to_signing_and_verifying(studio_keys: StudioKeys) -> None:
    data = skimage_photo("rocket.jpg").read_bytes()
    with pytest.raises(MediaTooLarge):
        verify_media(data, anchors_pem=None, max_bytes=1000)
    with pytest.raises(MediaTooLarge):
        sign_media(data, keys=studio_keys, max_pixels=1000)


def test_bad_signing_requests_are_refused_before_signing(studio_keys: StudioKeys) -> None:
    photo = skimage_photo("rocket.jpg")
    with pytest.raises(InvalidInput, match="prompt"):
        sign_media(photo, keys=studio_keys, prompt="x" * 5000)
    with pytest.raises(InvalidInput, match="relationship"):
        sign_media(photo, keys=studio_keys,
                   ingredients=[_ingredient("coffee.png", 1, "parentOf")])


def test_a_generative_edit_is_marked_composite(studio_keys: StudioKeys) -> None:
    signed = sign_media(skimage_photo("rocket.jpg"), keys=studio_keys, edit=True).data
    result = verify_media(signed, anchors_pem=studio_keys.root_pem)
    assert result.actions[0]["digitalSourceType"].endswith("compositeWithTrainedAlgorithmicMedia")


def test_an_input_that_already_carries_a_manifest_is_not_silently_replaced(
    studio_keys: StudioKeys,
) -> None:
    from tests.registry.provenance.helpers import C2PA_FIXTURES

    for name in ("C.jpg", "no_alg.jpg", "cloud.jpg"):
        with pytest.raises(InvalidInput, match="already carries a C2PA manifest"):
            sign_media(C2PA_FIXTURES / name, keys=studio_keys)
    replaced = sign_media(C2PA_FIXTURES / "C.jpg", keys=studio_keys, replace_manifest=True)
    assert verify_media(replaced.data, anchors_pem=studio_keys.root_pem).state == "valid"


def test_an_ingredient_with_a_broken_manifest_is_reported_with_its_codes(
    studio_keys: StudioKeys,
) -> None:
    from registry.provenance import SigningFailed
    from tests.registry.provenance.helpers import C2PA_FIXTURES

    data = (C2PA_FIXTURES / "XCA.jpg").read_bytes()
    spec = IngredientSpec("XCA.jpg", data, "image/jpeg", hashlib.sha256(data).hexdigest())
    signed = sign_media(skimage_photo("rocket.jpg"), keys=studio_keys, ingredients=[spec]).data
    result = verify_media(signed, anchors_pem=studio_keys.root_pem)
    assert result.state == "valid"  # our own claim is intact ...
    assert result.ingredients[0]["has_manifest"]
    assert "assertion.dataHash.mismatch" in result.ingredients[0]["codes"]  # ... theirs was not
    bad = (C2PA_FIXTURES / "no_alg.jpg").read_bytes()
    with pytest.raises(SigningFailed, match="unknown algorithm"):
        sign_media(skimage_photo("rocket.jpg"), keys=studio_keys, ingredients=[
            IngredientSpec("no_alg.jpg", bad, "image/jpeg", hashlib.sha256(bad).hexdigest())])


def test_trust_anchors_c2pa_cannot_parse_are_a_provenance_error_not_a_crash(
    signed_jpeg: bytes,
) -> None:
    from registry.errors import ProvenanceError

    with pytest.raises(ProvenanceError, match="settings refused"):
        verify_media(signed_jpeg, anchors_pem=b"not a pem bundle")
