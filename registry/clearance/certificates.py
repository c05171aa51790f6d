"""Clearance certificates: an in-toto Statement v1 in a DSSE envelope, signed with the studio key.

Format (readable by supply-chain tools that speak in-toto/DSSE):

    {"payloadType": "application/vnd.in-toto+json",
     "payload": base64(statement JSON),
     "signatures": [{"keyid": sha256 hex of the signer's SubjectPublicKeyInfo,
                     "sig": base64(DER ECDSA P-256 / SHA-256 signature over PAE),
                     "cert": PEM chain, signing certificate first}]}

The signature covers DSSE's pre-authentication encoding, PAE(type, body) =
`DSSEv1 SP len(type) SP type SP len(body) SP body` (lengths in ASCII decimal). DSSE itself leaves
key distribution open; like sigstore bundles we ship the X.509 chain with the signature, in the
signature entry's `cert` field (our documented extension; DSSE readers ignore unknown fields).

Verification is offline: parse the envelope, check the chain against the trust anchors
(registry.provenance.keys.verify_chain), check the signature over PAE with the certificate's key,
check the statement's shape, and, given the dataset, recompute its digest and compare it with the
statement's subject. Every failure is a `CertificateCheck` with `valid=False` and a reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit import record
from registry.catalog.models import Asset, Rightsholder
from registry.clearance.datasets import Dataset, compute_dataset_digest
from registry.clearance.models import ClearanceItem, ClearanceJob, JobStatus, Verdict
from registry.clearance.reports import build_report, counts_by_verdict, report_digest
from registry.db import utcnow
from registry.errors import Conflict, ProvenanceError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://clearhouse.dev/attestations/dataset-clearance/v1"
DIGEST_METHOD = "sha256 over the sorted per-item sha256 hex digests, newline-joined"
ENGINE = {"name": "clearhouse", "version": "0.1.0"}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _keyid(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def sign_statement(
    statement: dict[str, Any], *, private_key: ec.EllipticCurvePrivateKey, chain_pem: bytes
) -> dict[str, Any]:
    """Wrap `statement` in a DSSE envelope signed with `private_key` (ECDSA P-256, SHA-256)."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    cert = x509.load_pem_x509_certificates(chain_pem)[0]
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{
            "keyid": _keyid(cert),
            "sig": base64.b64encode(signature).decode(),
            "cert": chain_pem.decode(),
        }],
    }


def _statement(session: Session, job: ClearanceJob, *, actor: str) -> dict[str, Any]:
    counts = counts_by_verdict(session, job.id)
    reviewed = session.scalar(
        select(func.count()).select_from(ClearanceItem).where(
            ClearanceItem.job_id == job.id, ClearanceItem.review_decision.is_not(None))
    )
    matched = session.scalar(
        select(func.count()).select_from(ClearanceItem).where(
            ClearanceItem.job_id == job.id, ClearanceItem.machine_verdict.in_(
                [Verdict.blocked.value, Verdict.review.value]))
    )
    report = build_report(session, job)
    by_signal: dict[str, int] = {}
    by_licence: dict[str, int] = {}
    asset_items: dict[int, int] = {}
    for item in report["items"]:
        for match in item["matches"]:
            by_signal[str(match["signal"])] = by_signal.get(str(match["signal"]), 0) + 1
            licence = str(match.get("decided_by") or "none (rights reserved)").split("#")[0]
            by_licence[licence] = by_licence.get(licence, 0) + 1
            asset_items[int(match["asset_id"])] = asset_items.get(int(match["asset_id"]), 0) + 1
    by_holder: dict[str, int] = {}
    if asset_items:
        rows = session.execute(
            select(Asset.id, Rightsholder.name)
            .join(Rightsholder, Asset.rightsholder_id == Rightsholder.id)
            .where(Asset.id.in_(asset_items))
        )
        for asset_id, holder in rows:
            by_holder[holder] = by_holder.get(holder, 0) + asset_items[asset_id]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": f"dataset:{job.dataset_uri}",
            "digest": {"sha256": job.dataset_digest},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "job": {"id": job.id, "owner": job.owner,
                    "started_at": job.started_at.isoformat() if job.started_at else None,
                    "finished_at": job.finished_at.isoformat() if job.finished_at else None},
            "use": job.use,
            "licensee": job.licensee,
            "model": job.model_family,
            "dataset": {
                "uri": job.dataset_uri,
                "kind": job.dataset_kind,
                "options": {k: v for k, v in (job.dataset_options or {}).items()
                            if k != "allowed_roots"},
                "items": job.total_items,
                "digestMethod": DIGEST_METHOD,
            },
            "policyVersions": job.policy_versions,
            "catalogSnapshot": job.catalog_snapshot,
            "counts": counts,
            "review": {"decided": int(reviewed or 0), "studioContentItems": int(matched or 0)},
            "matchesBySignal": by_signal,
            "matchesByRightsholder": by_holder,
            "matchesByLicence": by_licence,
            "report": {"digest": {"sha256": report_digest(report)},
                       "mediaType": "application/json"},
            "issuedAt": utcnow().isoformat(),
            "issuer": actor,
            "engine": ENGINE,
        },
    }


def issue_certificate(
    session: Session,
    job: ClearanceJob,
    *,
    private_key: ec.EllipticCurvePrivateKey,
    chain_pem: bytes,
    actor: str,
) -> dict[str, Any]:
    """Sign and store the clearance certificate of a finished job with no item left in review.

    Raises Conflict if the job is not finished or an item still awaits review. Issuing again
    replaces the stored certificate (the audit log keeps every issue).
    """
    if job.status != JobStatus.finished.value:
        raise Conflict(f"clearance job {job.id} is {job.status}, not finished")
    counts = counts_by_verdict(session, job.id)
    if counts.get(Verdict.review.value):
        raise Conflict(
            f"clearance job {job.id} has {counts['review']} item(s) awaiting legal review",
            detail={"review": counts["review"]},
        )
    envelope = sign_statement(_statement(session, job, actor=actor),
                              private_key=private_key, chain_pem=chain_pem)
    job.certificate = envelope
    job.certified_at = utcnow()
    record(session, actor=actor, action="clearance.certificate.issue",
           subject=f"clearance:{job.id}", dataset_digest=job.dataset_digest, counts=counts)
    session.flush()
    return envelope


@dataclass(frozen=True)
class CertificateCheck:
    valid: bool
    reason: str
    statement: dict[str, Any] | None = None
    signer: str | None = None
    dataset_digest: str | None = None
    dataset_checked: bool = False
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        predicate = (self.statement or {}).get("predicate", {})
        return {
            "valid": self.valid,
            "reason": self.reason,
            "signer": self.signer,
            "dataset_digest": self.dataset_digest,
            "dataset_checked": self.dataset_checked,
            "use": predicate.get("use"),
            "licensee": predicate.get("licensee"),
            "model": predicate.get("model"),
            "counts": predicate.get("counts"),
            "statement": self.statement,
        }


def _invalid(reason: str, **kw: Any) -> CertificateCheck:
    return CertificateCheck(False, reason, **kw)


def verify_certificate(
    data: bytes | str | dict[str, Any],
    *,
    anchors_pem: bytes,
    dataset: Dataset | None = None,
    max_bytes: int = 50 * 1024 * 1024,
) -> CertificateCheck:
    """Check a certificate offline against the trust anchors, and optionally against a dataset."""
    from registry.provenance.keys import verify_chain

    try:
        envelope = data if isinstance(data, dict) else json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return _invalid(f"not a certificate: not valid JSON ({exc})")
    if not isinstance(envelope, dict):
        return _invalid("not a certificate: the envelope must be a JSON object")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        return _invalid(f"payloadType is {envelope.get('payloadType')!r}, expected {PAYLOAD_TYPE}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return _invalid("the envelope has no signatures")
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
    except (binascii.Error, ValueError):
        return _invalid("payload is not valid base64")
    reasons = []
    for entry in signatures:
        if not isinstance(entry, dict) or "cert" not in entry or "sig" not in entry:
            reasons.append("signature entry without 'sig' and 'cert'")
            continue
        try:
            leaf = verify_chain(str(entry["cert"]).encode(), anchors_pem)
        except ProvenanceError as exc:
            reasons.append(f"signing certificate: {exc.message}")
            continue
        key = leaf.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            reasons.append("signing certificate does not hold an ECDSA key")
            continue
        try:
            signature = base64.b64decode(str(entry["sig"]), validate=True)
            key.verify(signature, pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError):
            reasons.append("signature is not valid base64")
            continue
        except InvalidSignature:
            reasons.append("signature does not match the payload (the certificate was altered)")
            continue
        signer = leaf.subject.rfc4514_string()
        return _check_statement(payload, signer, dataset, max_bytes)
    return _invalid("; ".join(reasons))


def _check_statement(
    payload: bytes, signer: str, dataset: Dataset | None, max_bytes: int
) -> CertificateCheck:
    try:
        statement = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return _invalid("signed payload is not JSON", signer=signer)
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        return _invalid("signed payload is not an in-toto Statement v1", signer=signer)
    if statement.get("predicateType") != PREDICATE_TYPE:
        return _invalid(f"predicateType is not {PREDICATE_TYPE}", signer=signer)
    subject = statement.get("subject") or [{}]
    digest = ((subject[0] or {}).get("digest") or {}).get("sha256")
    if not isinstance(digest, str):
        return _invalid("statement has no subject sha256 digest", signer=signer)
    if dataset is None:
        return CertificateCheck(True, "signature valid and trusted", statement, signer, digest)
    actual = compute_dataset_digest(dataset, max_bytes=max_bytes)
    if actual != digest:
        return _invalid(
            f"dataset digest mismatch: the certificate covers sha256:{digest}, the dataset at "
            f"{dataset.uri} is now sha256:{actual} (items added, removed or changed)",
            statement=statement, signer=signer, dataset_digest=digest, dataset_checked=True,
        )
    return CertificateCheck(True, "signature valid and trusted; dataset digest matches",
                            statement, signer, digest, dataset_checked=True)
