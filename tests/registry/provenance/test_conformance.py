"""Conformance against files no one here made (../shared/fixtures/c2pa, see its SOURCES.md).

With the studio's default trust (our root only), files signed by the SDK's test certificates are
`untrusted` (signature valid); with the fixture's trust bundle as the anchors they are `valid`;
tampered ones `invalid` with the listed code; unsigned ones `no_manifest`; the remote-manifest and
malformed ones a clear result, without a crash or a network call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from registry.provenance import StudioKeys, verify_media
from tests.registry.provenance.helpers import C2PA_FIXTURES, TEST_TRUST_BUNDLE

EXPECTED: dict[str, Any] = json.loads((C2PA_FIXTURES / "expected.json").read_text())["files"]
STATE_FOR = {"Trusted": "valid", "Invalid": "invalid"}


def _expected_state(expect: dict[str, Any]) -> str:
    if expect["outcome"] == "no_manifest":
        return "no_manifest"
    if expect["outcome"] == "error":
        # Remote: we do not fetch (no manifest to check here); malformed: invalid.
        return "no_manifest" if expect["error_message"].startswith("Remote") else "invalid"
    state = expect["validation_state"]
    if state in STATE_FOR:
        return STATE_FOR[state]
    codes = expect["validation_status_codes"]
    return "untrusted" if "signingCredential.untrusted" in codes else "valid"


@pytest.mark.parametrize("trust", ["default", "with_test_trust"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_verifies_to_its_expected_state(
    name: str, trust: str, studio_keys: StudioKeys
) -> None:
    expect = EXPECTED[name]["expect"][trust]
    anchors = studio_keys.root_pem if trust == "default" else TEST_TRUST_BUNDLE.read_bytes()
    result = verify_media(C2PA_FIXTURES / name, anchors_pem=anchors)
    assert result.state == _expected_state(expect), result.message
    if expect["outcome"] == "manifest":
        assert set(result.codes) == set(expect["validation_status_codes"])
        assert result.manifest_label == expect["active_manifest"]
        assert result.signer is not None
        assert result.signer["issuer"] == expect["signature_issuer"]
        assert result.signer["trusted"] == ("signingCredential.untrusted" not in result.codes)
        assert [i["title"] for i in result.ingredients] == expect["ingredient_titles"]
        assert [i["relationship"] for i in result.ingredients] == \
            expect["ingredient_relationships"]
        assert result.manifest_count == expect["manifest_count"]
    json.dumps(result.as_dict())  # always serialisable
    assert result.message


def test_the_fixture_files_are_the_ones_sources_md_describes() -> None:
    import hashlib

    for name, info in EXPECTED.items():
        data = (C2PA_FIXTURES / name).read_bytes()
        assert len(data) == info["bytes"]
        assert hashlib.sha256(data).hexdigest() == info["sha256"]


@pytest.mark.parametrize("trust", ["default", "with_test_trust"])
@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED)
                                  if "training_mining" in EXPECTED[n]["expect"]["default"]])
def test_training_mining_of_the_fixtures_reads_as_recorded(
    name: str, trust: str, studio_keys: StudioKeys
) -> None:
    expect = EXPECTED[name]["expect"][trust]["training_mining"]
    anchors = studio_keys.root_pem if trust == "default" else TEST_TRUST_BUNDLE.read_bytes()
    tm = verify_media(C2PA_FIXTURES / name, anchors_pem=anchors).training_mining
    assert tm is not None and tm.problems == ()
    assert list(tm.assertions) == list(expect)
    recorded = {
        key.split(".", 1)[1]: entry["use"]
        for data in expect.values() for key, entry in data["entries"].items()
    }
    assert {u: p.permission.value for u, p in tm.uses.items()} == recorded


def test_verification_is_offline_unless_the_caller_allows_the_network() -> None:
    from registry.provenance.c2pa_adapter import reader_settings

    offline = reader_settings(anchors_pem=None)["verify"]
    assert offline["remote_manifest_fetch"] is False and offline["ocsp_fetch"] is False
    online = reader_settings(anchors_pem=None, allow_network=True)["verify"]
    assert online["remote_manifest_fetch"] is True


def test_the_remote_manifest_is_reported_with_its_url_and_the_reason() -> None:
    # c2pa answers "must fetch remote manifests" only when fetching is off: no request was made.
    result = verify_media(C2PA_FIXTURES / "cloud.jpg", anchors_pem=None)
    assert result.codes == ("manifest.inaccessible",)
    assert result.remote_url and result.remote_url.startswith("https://cai-manifests.adobe.com/")
    assert "not fetched" in result.message


def test_the_malformed_manifest_is_invalid_with_a_code_and_the_librarys_reason() -> None:
    result = verify_media(C2PA_FIXTURES / "no_alg.jpg", anchors_pem=None)
    assert result.state == "invalid"
    assert result.codes == ("algorithm.unsupported",)
    assert "unknown algorithm" in result.message


def test_a_cawg_identity_credential_outside_the_bundle_is_noted_but_the_claim_is_valid() -> None:
    result = verify_media(C2PA_FIXTURES / "C_with_CAWG_data.jpg",
                          anchors_pem=TEST_TRUST_BUNDLE.read_bytes())
    assert result.state == "valid"
    assert result.codes == ("cawg.x509.credential.untrusted",)
    assert "identity credential" in result.message
