"""Studio keys: creation, idempotence, file modes, C2PA extensions, rotation, user chains, trust."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from registry.errors import ProvenanceError
from registry.provenance import (
    CertificateInvalid,
    CertificateUntrusted,
    SigningKeyError,
    ensure_studio_keys,
    load_signing_keys,
    rotate_studio_keys,
    sign_media,
    trust_anchors_pem,
    verify_chain,
    verify_media,
)
from registry.provenance.keys import ROOT_KEY, retired_certificates, signing_cert_problems
from tests.photos import skimage_photo
from tests.registry.provenance.helpers import issue_leaf, key_pem, pem


def test_first_run_creates_a_root_and_a_signing_certificate_with_private_keys_0600(
    tmp_path: Path,
) -> None:
    keys = ensure_studio_keys(tmp_path / "keys")
    assert keys.created
    for path in (keys.signing_key_path, tmp_path / "keys" / ROOT_KEY):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    root = x509.load_pem_x509_certificate(keys.root_pem)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert keys.signing_cert.issuer == root.subject
    assert keys.private_key.curve.name == "secp256r1"
    assert keys.chain_pem.count(b"BEGIN CERTIFICATE") == 2


def test_the_signing_certificate_has_every_extension_c2pa_requires(tmp_path: Path) -> None:
    cert = ensure_studio_keys(tmp_path / "keys").signing_cert
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert signing_cert_problems(cert) == []


def test_a_second_run_reads_the_same_keys_and_creates_nothing(tmp_path: Path) -> None:
    first = ensure_studio_keys(tmp_path / "keys")
    second = ensure_studio_keys(tmp_path / "keys")
    assert not second.created
    assert second.chain_pem == first.chain_pem and second.key_pem == first.key_pem


def test_rotation_issues_a_new_signing_certificate_under_the_same_root_and_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    keys_dir = tmp_path / "keys"
    old = ensure_studio_keys(keys_dir)
    signed_before = sign_media(skimage_photo("rocket.jpg"), keys=old).data
    new = rotate_studio_keys(keys_dir)
    assert new.signing_cert.serial_number != old.signing_cert.serial_number
    assert new.root_pem == old.root_pem
    assert [c.serial_number for c in retired_certificates(keys_dir)] == [
        old.signing_cert.serial_number]
    assert stat.S_IMODE(new.signing_key_path.stat().st_mode) == 0o600
    # Media signed before the rotation still verifies as trusted against the same root.
    assert verify_media(signed_before, anchors_pem=new.root_pem).state == "valid"
    signed_after = sign_media(skimage_photo("rocket.jpg"), keys=new).data
    assert verify_media(signed_after, anchors_pem=new.root_pem).state == "valid"


def test_a_users_own_chain_and_key_sign_and_verify(tmp_path: Path) -> None:
    studio = ensure_studio_keys(tmp_path / "ca")
    chain = tmp_path / "mine.pem"
    chain.write_bytes(studio.chain_pem)
    keys = load_signing_keys(cert=chain, key=studio.signing_key_path)
    assert keys.root_pem == studio.root_pem
    signed = sign_media(skimage_photo("rocket.jpg"), keys=keys).data
    assert verify_media(signed, anchors_pem=studio.root_pem).state == "valid"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("no_eku", "ExtendedKeyUsage"),
        ("server_auth_only", "ExtendedKeyUsage"),
        ("no_aki", "AuthorityKeyIdentifier"),
        ("self_signed", "lone certificate"),
        ("wrong_key", "does not match"),
    ],
)
def test_a_user_chain_that_cannot_sign_c2pa_is_refused_with_the_reason(
    tmp_path: Path, kind: str, expected: str
) -> None:
    studio = ensure_studio_keys(tmp_path / "ca")
    root = x509.load_pem_x509_certificate(studio.root_pem)
    root_key = studio.root_cert_path.parent / ROOT_KEY
    from cryptography.hazmat.primitives import serialization

    rk = serialization.load_pem_private_key(root_key.read_bytes(), password=None)
    options = {"no_eku": {"eku": []},
               "server_auth_only": {"eku": [ExtendedKeyUsageOID.SERVER_AUTH]},
               "no_aki": {"aki": False}}.get(kind, {})
    leaf = issue_leaf(root, rk, **options)  # type: ignore[arg-type]
    key = issue_leaf.last_key  # type: ignore[attr-defined]
    chain = pem(leaf) + pem(root)
    if kind == "self_signed":
        chain = studio.signing_cert_path.read_bytes()
        key = studio.private_key
    if kind == "wrong_key":
        key = studio.private_key
    (tmp_path / "c.pem").write_bytes(chain)
    (tmp_path / "k.pem").write_bytes(key_pem(key))
    with pytest.raises(SigningKeyError, match=expected):
        load_signing_keys(cert=tmp_path / "c.pem", key=tmp_path / "k.pem")


def test_missing_user_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="no such file"):
        load_signing_keys(cert=tmp_path / "nope.pem", key=tmp_path / "nope.key")


def test_trust_anchors_default_to_the_studio_root_and_follow_the_configured_bundle(
    tmp_path: Path,
) -> None:
    keys = ensure_studio_keys(tmp_path / "keys")
    assert trust_anchors_pem(None, tmp_path / "keys") == keys.root_pem
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(keys.root_pem + keys.root_pem)
    assert trust_anchors_pem(bundle, tmp_path / "keys") == bundle.read_bytes()
    with pytest.raises(CertificateInvalid, match="no such file"):
        trust_anchors_pem(tmp_path / "missing.pem", tmp_path / "keys")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ProvenanceError):
        trust_anchors_pem(tmp_path / "junk.pem", tmp_path / "keys")


def test_verify_chain_accepts_a_chain_to_an_anchor_and_names_what_is_wrong_otherwise(
    tmp_path: Path,
) -> None:
    ours = ensure_studio_keys(tmp_path / "ours")
    theirs = ensure_studio_keys(tmp_path / "theirs", organisation="Theirs")
    assert verify_chain(ours.chain_pem, ours.root_pem) == ours.signing_cert
    # The leaf alone chains to the root by its issuer.
    leaf_only = pem(ours.signing_cert)
    assert verify_chain(leaf_only, ours.root_pem) == ours.signing_cert
    with pytest.raises(CertificateUntrusted, match="does not chain"):
        verify_chain(theirs.chain_pem, ours.root_pem)
    # A leaf glued to a root that did not issue it.
    with pytest.raises(CertificateInvalid, match="not signed by"):
        verify_chain(pem(theirs.signing_cert) + ours.root_pem, ours.root_pem)
    with pytest.raises(CertificateInvalid, match="PEM"):
        verify_chain(b"garbage", ours.root_pem)
    import datetime as dt

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=5000)
    with pytest.raises(CertificateInvalid, match="not valid at"):
        verify_chain(ours.chain_pem, ours.root_pem, at=later)


def test_an_expired_signing_certificate_is_refused_and_rotation_replaces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from registry.provenance import keys as keys_module

    real_now = keys_module._now
    monkeypatch.setattr(keys_module, "_now", lambda: real_now() - dt.timedelta(days=3 * 365))
    ensure_studio_keys(tmp_path / "keys")  # made three years ago: the signing cert expired
    monkeypatch.setattr(keys_module, "_now", real_now)
    with pytest.raises(SigningKeyError, match="not valid now"):
        ensure_studio_keys(tmp_path / "keys")
    rotated = rotate_studio_keys(tmp_path / "keys")
    assert signing_cert_problems(rotated.signing_cert) == []
    assert not ensure_studio_keys(tmp_path / "keys").created


def test_concurrent_first_runs_make_one_root(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ensure_studio_keys(tmp_path / "keys"), range(4)))
    assert len({k.root_pem for k in results}) == 1
    assert sum(k.created for k in results) == 1
    for keys in results:
        verify_chain(keys.chain_pem, keys.root_pem)
