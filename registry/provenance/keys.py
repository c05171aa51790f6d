"""The studio's signing keys and trust anchors, made with `cryptography`.

On first run `ensure_studio_keys(keys_dir)` creates, under CLEARHOUSE_HOME/keys/:

    root.pem     studio root CA certificate (ECDSA P-256, 10 years, CA, keyCertSign)
    root.key     its private key (0600): only needed to issue the next signing certificate
    signing.pem  the signing certificate (ECDSA P-256, 2 years) issued by the root
    signing.key  its private key (0600)
    retired/     signing certificates replaced by `rotate_studio_keys` (certificates only, kept so
                 that the history of who signed what stays readable)

The signing certificate carries what c2pa-rs 0.91 demands of a C2PA signer (measured, see
FIELD-NOTES): KeyUsage digitalSignature (critical), BasicConstraints CA=false, ExtendedKeyUsage with
emailProtection (the C2PA EKU alone is refused unless trust_config lists it, so both are written),
SubjectKeyIdentifier and AuthorityKeyIdentifier. A user can bring their own PEM chain and key
instead (`load_signing_keys`); we check the same extensions there so that a bad certificate fails
with a reason rather than c2pa's "the certificate is invalid".

`verify_chain` is the one certificate-trust check of the registry: the clearance certificates (DSSE)
and anything else that verifies a chain against trust anchors use it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from registry.files import PRIVATE_FILE_MODE, PUBLIC_FILE_MODE, write_atomically
from registry.provenance.errors import (
    CertificateInvalid,
    CertificateUntrusted,
    SigningKeyError,
)

ROOT_CERT = "root.pem"
ROOT_KEY = "root.key"
SIGNING_CERT = "signing.pem"
SIGNING_KEY = "signing.key"
RETIRED_DIR = "retired"
LOCK_FILE = ".lock"

ROOT_VALIDITY = dt.timedelta(days=3650)
SIGNING_VALIDITY = dt.timedelta(days=730)
# Clocks of the machines that verify may run a little behind ours.
BACKDATE = dt.timedelta(minutes=5)
C2PA_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
# EKUs c2pa-rs accepts for a signer by default (its built-in trust_config).
ACCEPTED_EKUS = frozenset(
    {
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
        x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # documentSigning
        x509.ObjectIdentifier("1.3.6.1.4.1.311.76.59.1.9"),  # Microsoft C2PA signing
    }
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_atomic(path: Path, data: bytes, *, private: bool) -> None:
    """Write a file whole or not at all; private files are created 0600 (never world-readable)."""
    write_atomically(path, data, mode=PRIVATE_FILE_MODE if private else PUBLIC_FILE_MODE)


def load_certificates(pem: bytes, *, what: str = "certificate") -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order. Raises CertificateInvalid if there is none."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise CertificateInvalid(f"{what}: not a PEM certificate bundle ({exc})") from exc
    if not certs:
        raise CertificateInvalid(f"{what}: no certificate in the PEM data")
    return certs


def _read_certs(path: Path) -> list[x509.Certificate]:
    return load_certificates(path.read_bytes(), what=str(path))


def _load_private_key(pem: bytes, *, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{what}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SigningKeyError(f"{what}: the signing key must be ECDSA P-256 (ES256)")
    return key


@dataclass(frozen=True)
class StudioKeys:
    """Where the signing material is, and its contents (read from disk when asked)."""

    created: bool
    root_cert_path: Path
    signing_cert_path: Path
    signing_key_path: Path

    @cached_property
    def _chain(self) -> list[x509.Certificate]:
        certs = _read_certs(self.signing_cert_path)
        if self.root_cert_path != self.signing_cert_path:
            certs += _read_certs(self.root_cert_path)
        return certs

    @property
    def chain_pem(self) -> bytes:
        """The signing certificate followed by its issuers up to the root, as c2pa wants it."""
        return b"".join(_pem(c) for c in self._chain)

    @property
    def root_pem(self) -> bytes:
        """The last certificate of the chain: the studio root (or the top of a user's chain)."""
        return _pem(self._chain[-1])

    @property
    def key_pem(self) -> bytes:
        return self.signing_key_path.read_bytes()

    @cached_property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return _load_private_key(self.key_pem, what=str(self.signing_key_path))

    @property
    def signing_cert(self) -> x509.Certificate:
        return self._chain[0]


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def _make_root(organisation: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{organisation} Root CA", organisation)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue_signing_cert(
    root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey, organisation: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + SIGNING_VALIDITY, root.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organisation} C2PA Signer", organisation))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, C2PA_SIGNING_EKU]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    return cert, key


def _paths(keys_dir: Path) -> StudioKeys:
    return StudioKeys(
        created=False,
        root_cert_path=keys_dir / ROOT_CERT,
        signing_cert_path=keys_dir / SIGNING_CERT,
        signing_key_path=keys_dir / SIGNING_KEY,
    )


def ensure_studio_keys(keys_dir: Path, *, organisation: str = "Clearhouse Studio") -> StudioKeys:
    """The studio's keys under keys_dir, created on first call (later calls only read them).

    `created` says whether this call made anything. Private keys are written 0600 and the folder
    0700. A root that exists without a signing certificate gets a new signing certificate.
    Raises SigningKeyError if existing files do not belong together.
    """
    with _locked(keys_dir):
        keys = _ensure_locked(keys_dir, organisation)
    check_signing_keys(keys)
    return keys


@contextlib.contextmanager
def _locked(keys_dir: Path) -> Iterator[None]:
    """One process at a time creates or rotates keys (two first runs must not make two roots)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    with open(keys_dir / LOCK_FILE, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _ensure_locked(keys_dir: Path, organisation: str) -> StudioKeys:
    paths = _paths(keys_dir)
    root_key_path = keys_dir / ROOT_KEY
    created = False
    if not paths.root_cert_path.exists():
        if paths.signing_cert_path.exists():
            raise SigningKeyError(
                f"{keys_dir}: {SIGNING_CERT} exists but {ROOT_CERT} is missing; restore it or "
                "move the folder away to start over"
            )
        root, root_key = _make_root(organisation)
        _write_atomic(root_key_path, _key_pem(root_key), private=True)
        _write_atomic(paths.root_cert_path, _pem(root), private=False)
        created = True
    if not paths.signing_cert_path.exists() or not paths.signing_key_path.exists():
        _issue_into(keys_dir, organisation)
        created = True
    return StudioKeys(created, paths.root_cert_path, paths.signing_cert_path,
                      paths.signing_key_path)


def _issue_into(keys_dir: Path, organisation: str) -> x509.Certificate:
    root = load_certificates((keys_dir / ROOT_CERT).read_bytes(), what=ROOT_CERT)[0]
    root_key_path = keys_dir / ROOT_KEY
    if not root_key_path.exists():
        raise SigningKeyError(
            f"{root_key_path}: the root's private key is missing, so no signing certificate "
            "can be issued"
        )
    root_key = _load_private_key(root_key_path.read_bytes(), what=str(root_key_path))
    cert, key = _issue_signing_cert(root, root_key, organisation)
    # Key first: a certificate on disk without its key would be unusable.
    _write_atomic(keys_dir / SIGNING_KEY, _key_pem(key), private=True)
    _write_atomic(keys_dir / SIGNING_CERT, _pem(cert), private=False)
    return cert


def rotate_studio_keys(keys_dir: Path, *, organisation: str = "Clearhouse Studio") -> StudioKeys:
    """Issue a new signing certificate and key under the same root.

    The old certificate moves to keys_dir/retired/<serial hex>.pem (kept for the history of
    signatures; everything it signed still chains to the root); its private key is deleted.
    """
    with _locked(keys_dir):
        # No validity check of the current certificate here: rotating is how an expired one is
        # replaced.
        current = _ensure_locked(keys_dir, organisation)
        old = current.signing_cert
        retired = keys_dir / RETIRED_DIR / f"{old.serial_number:x}.pem"
        _write_atomic(retired, _pem(old), private=False)
        _issue_into(keys_dir, organisation)
    keys = StudioKeys(True, current.root_cert_path, current.signing_cert_path,
                      current.signing_key_path)
    check_signing_keys(keys)
    return keys


def retired_certificates(keys_dir: Path) -> list[x509.Certificate]:
    """Signing certificates replaced by rotations, oldest first."""
    folder = keys_dir / RETIRED_DIR
    if not folder.is_dir():
        return []
    certs = [load_certificates(p.read_bytes(), what=str(p))[0] for p in folder.glob("*.pem")]
    return sorted(certs, key=lambda c: c.not_valid_before_utc)


def load_signing_keys(*, cert: Path, key: Path) -> StudioKeys:
    """A user's own PEM chain (signing certificate first, then its issuers) and private key.

    Raises SigningKeyError naming what is missing (file, key type, required extension, a key that
    does not match the certificate).
    """
    for path in (cert, key):
        if not path.is_file():
            raise SigningKeyError(f"{path}: no such file")
    keys = StudioKeys(False, cert, cert, key)
    check_signing_keys(keys)
    return keys


def check_signing_keys(keys: StudioKeys) -> None:
    """Raise SigningKeyError unless the key matches the certificate and the certificate has every
    extension a C2PA signer needs (so that c2pa's opaque "the certificate is invalid" never shows).
    """
    cert = keys.signing_cert
    where = str(keys.signing_cert_path)
    key = keys.private_key
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise SigningKeyError(f"{keys.signing_key_path}: the key does not match the certificate")
    problems = signing_cert_problems(cert)
    if problems:
        raise SigningKeyError(f"{where}: cannot sign C2PA manifests: " + "; ".join(problems))
    if len(keys._chain) < 2:
        raise SigningKeyError(
            f"{where}: a self-signed or lone certificate cannot sign C2PA manifests; give the "
            "chain (signing certificate, then its issuers)"
        )
    try:
        verify_chain(keys.chain_pem, keys.root_pem)
    except CertificateInvalid as exc:
        raise SigningKeyError(f"{where}: the chain does not hold together: {exc.message}") from exc


def _ext(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType] | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def signing_cert_problems(cert: x509.Certificate) -> list[str]:
    """What a certificate lacks to sign C2PA manifests with c2pa-rs (empty list: nothing)."""
    problems: list[str] = []
    now = _now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        problems.append(
            f"not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d})"
        )
    if cert.issuer == cert.subject:
        problems.append("self-signed (a C2PA signer must be issued by a CA)")
    ku = _ext(cert, x509.KeyUsage)
    if ku is None or not ku.critical or not ku.value.digital_signature:  # type: ignore[attr-defined]
        problems.append("KeyUsage digitalSignature (critical) is missing")
    bc = _ext(cert, x509.BasicConstraints)
    if bc is not None and bc.value.ca:  # type: ignore[attr-defined]
        problems.append("it is a CA certificate (BasicConstraints CA=true)")
    eku = _ext(cert, x509.ExtendedKeyUsage)
    usages = set(eku.value) if eku is not None else set()  # type: ignore[call-overload]
    if not usages & ACCEPTED_EKUS:
        problems.append(
            "ExtendedKeyUsage needs emailProtection (1.3.6.1.5.5.7.3.4) or documentSigning"
        )
    if _ext(cert, x509.SubjectKeyIdentifier) is None:
        problems.append("SubjectKeyIdentifier is missing")
    if _ext(cert, x509.AuthorityKeyIdentifier) is None:
        problems.append("AuthorityKeyIdentifier is missing")
    if not isinstance(cert.public_key(), ec.EllipticCurvePublicKey):
        problems.append("the key is not ECDSA")
    return problems


def trust_anchors_pem(settings_trust_anchors: Path | None, keys_dir: Path) -> bytes:
    """The PEM bundle verification trusts: the configured bundle, else the studio root.

    Raises CertificateInvalid if the configured bundle is missing or holds no certificate, and
    SigningKeyError if neither is configured nor created yet (run `clearhouse init`).
    """
    if settings_trust_anchors is not None:
        if not settings_trust_anchors.is_file():
            raise CertificateInvalid(f"trust anchors {settings_trust_anchors}: no such file")
        data = settings_trust_anchors.read_bytes()
        load_certificates(data, what=f"trust anchors {settings_trust_anchors}")
        return data
    root = keys_dir / ROOT_CERT
    if not root.is_file():
        raise SigningKeyError(f"{root}: no studio root yet (run `clearhouse init`)")
    return root.read_bytes()


def verify_chain(
    chain_pem: bytes, anchors_pem: bytes, *, at: dt.datetime | None = None
) -> x509.Certificate:
    """Check that a PEM chain (end-entity first) is well formed, in date, signed link by link, and
    reaches one of the anchors; return the end-entity certificate.

    Raises CertificateInvalid (malformed, expired, a broken signature, a non-CA issuer) or
    CertificateUntrusted (sound, but no anchor issued or equals any certificate of the chain).
    """
    when = at or _now()
    chain = load_certificates(chain_pem, what="certificate chain")
    anchors = load_certificates(anchors_pem, what="trust anchors")
    for cert in chain:
        if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
            raise CertificateInvalid(
                f"certificate {cert.subject.rfc4514_string()!r} is not valid at "
                f"{when:%Y-%m-%dT%H:%M:%SZ} (valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                f"{cert.not_valid_after_utc:%Y-%m-%d})"
            )
    for child, parent in itertools.pairwise(chain):
        _check_issued_by(child, parent)
    anchor_ders = {a.public_bytes(serialization.Encoding.DER) for a in anchors}
    for cert in chain:
        if cert.public_bytes(serialization.Encoding.DER) in anchor_ders:
            return chain[0]
    top = chain[-1]
    for anchor in anchors:
        if anchor.subject == top.issuer:
            try:
                _check_issued_by(top, anchor)
            except CertificateInvalid:
                continue
            return chain[0]
    raise CertificateUntrusted(
        f"certificate {chain[0].subject.rfc4514_string()!r} (issuer "
        f"{top.issuer.rfc4514_string()!r}) does not chain to a configured trust anchor"
    )


def _check_issued_by(child: x509.Certificate, parent: x509.Certificate) -> None:
    bc = _ext(parent, x509.BasicConstraints)
    if bc is None or not bc.value.ca:  # type: ignore[attr-defined]
        raise CertificateInvalid(
            f"issuer {parent.subject.rfc4514_string()!r} is not a CA certificate"
        )
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateInvalid(
            f"certificate {child.subject.rfc4514_string()!r} is not signed by "
            f"{parent.subject.rfc4514_string()!r} ({exc or 'bad signature'})"
        ) from exc


def certificate_info(cert: x509.Certificate) -> dict[str, object]:
    """A certificate as plain data for `keys show` and the API."""
    eku = _ext(cert, x509.ExtendedKeyUsage)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": f"{cert.serial_number:x}",
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
        "extended_key_usage": [o.dotted_string for o in eku.value] if eku else [],  # type: ignore[attr-defined]
    }


def studio_signing_keys(
    *, signing_cert: Path | None, signing_key: Path | None, keys_dir: Path
) -> StudioKeys:
    """The keys that sign: the user's configured chain and key, else the studio's own (created on
    first use). Raises SigningKeyError when only one of the chain and the key is configured."""
    if signing_cert is not None or signing_key is not None:
        if signing_cert is None or signing_key is None:
            raise SigningKeyError(
                "configure both CLEARHOUSE_SIGNING_CERT and CLEARHOUSE_SIGNING_KEY, or neither"
            )
        return load_signing_keys(cert=signing_cert, key=signing_key)
    return ensure_studio_keys(keys_dir)
