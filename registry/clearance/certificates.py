"""Clearance certificates: an in-toto Statement v1 in a DSSE envelope, signed with the studio key.

Format (readable by supply-chain tools that speak in-toto/DSSE):

    {"payloadType": "application/vnd.in-toto+json",
     "payload": base64(statement JSON),
     "signatures": [{"keyid": sha256 hex of the signer's SubjectPublicKeyInfo,
                     "sig": base64(DER ECDSA P-256 / SHA-256 signature over PAE),
                     "cert": PEM chain, signing certificate first}]}

The envelope is made and its signature checked with securesystemslib (`dsse.Envelope`,
`CryptoSigner`, `SSlibKey`); the chain check and the statement checks are ours.
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
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
from securesystemslib.signer import (  # type: ignore[attr-defined]  # no __all__ upstream
    CryptoSigner,
    Signature,
    SSlibKey,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit import Actor, as_actor, record
from registry.catalog.models import Asset, Rightsholder
from registry.clearance.datasets import (
    Dataset,
    dataset_digest,
    dataset_item_digests,
    item_digest,
)
from registry.clearance.models import ClearanceItem, ClearanceJob, JobStatus, Verdict
from registry.clearance.reports import build_report, counts_by_verdict, report_digest
from registry.db import utcnow
from registry.errors import Conflict, ProvenanceError, RegistryError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://clearhouse.dev/attestations/dataset-clearance/v1"
DIGEST_METHOD = "sha256 over the sorted per-item sha256 hex digests, newline-joined"
ENGINE = {"name": "clearhouse", "version": "0.1.0"}
OPT_OUT_SIGNALS = ("tdmrep", "iptc-plus", "c2pa")  # what registry.clearance.optout reads
MAX_LISTED_EXCLUSIONS = 10_000  # beyond this, counts only (the statement stays small)
MAX_LISTED_SUBSET = 100_000  # cleared items whose digest prefixes the statement lists
PREFIX_HEX = 16  # 64 bits of each cleared item's sha256: enough to name what differs


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (securesystemslib's)."""
    return Envelope(payload, payload_type, {}).pae()


def _keyid(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def sign_statement(
    statement: dict[str, Any], *, private_key: ec.EllipticCurvePrivateKey, chain_pem: bytes
) -> dict[str, Any]:
    """Wrap `statement` in a DSSE envelope signed with `private_key` (ECDSA P-256, SHA-256),
    made by securesystemslib; the signature entry carries the PEM chain in `cert`."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    cert = x509.load_pem_x509_certificates(chain_pem)[0]
    public = SSlibKey.from_crypto(private_key.public_key(), keyid=_keyid(cert),
                                  scheme="ecdsa-sha2-nistp256")
    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    signature = envelope.sign(CryptoSigner(private_key, public))
    signature.unrecognized_fields["cert"] = chain_pem.decode()
    data: dict[str, Any] = envelope.to_dict()
    return data


def _public_key(key: str) -> str:
    """An item key as a certificate may show it: never a server path (a manifest's absolute path
    keeps its file name only)."""
    if key.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", key):
        return ".../" + PurePosixPath(key.replace("\\", "/")).name
    return key


_PATHS = re.compile(r"(?:[A-Za-z]:)?/[^\s:'\"]+")


def _without_paths(text: str) -> str:
    return _PATHS.sub(lambda m: ".../" + PurePosixPath(m.group(0)).name, text)


def exclusion_reason(item: ClearanceItem) -> str:
    """Why an item is not in the cleared subset, in words (no server paths)."""
    if item.verdict == Verdict.error.value:
        return "unreadable: " + _without_paths(item.error or "not readable media")[:200]
    if item.verdict == Verdict.review.value:
        return "awaiting legal review"
    if item.review_decision == "blocked":
        return f"blocked in legal review by {item.reviewed_by}: {item.review_comment or ''}"
    denied = [m for m in item.matches or [] if m.get("decision") == "denied"]
    if denied:
        by = str(denied[0].get("decided_by") or "rights reserved").split("#")[0]
        return f"studio asset {denied[0].get('asset_id')} denied ({by})"
    signals = [s for s in item.signals or [] if s.get("permission") == "notAllowed"]
    if signals:
        return f"opt-out signal {signals[0].get('signal')}: {signals[0].get('value')}"
    return item.verdict


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0].split(" (", 1)[0].strip()


def _period(session: Session, job: ClearanceJob, policies: Any | None,
            issued: dt.datetime) -> dict[str, Any]:
    """The period the certificate holds for: from its issue until the earliest end of a licence
    that allowed a cleared item (open-ended when none of them ends, or no studio content)."""
    ends: list[dt.date] = []
    used: set[str] = set()
    if policies is not None:
        rows = session.scalars(select(ClearanceItem.matches).where(
            ClearanceItem.job_id == job.id, ClearanceItem.verdict == Verdict.clear.value))
        for matches in rows:
            for match in matches or []:
                if match.get("decision") == "allowed" and match.get("decided_by"):
                    used.add(str(match["decided_by"]).split("#")[0])
        for policy_id in sorted(used):
            try:
                terms = policies.get(policy_id)
            except RegistryError:
                continue
            if terms.period.to is not None:
                ends.append(terms.period.to)
    return {"from": issued.date().isoformat(),
            "to": min(ends).isoformat() if ends else None,
            "licences": sorted(used),
            "basis": "from the issue date until the earliest end of a licence that allowed a "
                     "cleared item" if policies is not None else "not computed (no policies given)"}


def _subset_prefixes(session: Session, job_id: int) -> dict[str, Any]:
    """The first 64 bits of every cleared item's sha256 (sorted), so that verification can name
    the items of a dataset that are not in the subset; left out above MAX_LISTED_SUBSET items."""
    shas = sorted(str(sha)[:PREFIX_HEX] for (sha,) in session.execute(
        select(ClearanceItem.sha256).where(ClearanceItem.job_id == job_id,
                                           ClearanceItem.verdict == Verdict.clear.value)))
    if len(shas) > MAX_LISTED_SUBSET:
        return {}
    return {"itemDigestPrefixes": shas}


def _statement(session: Session, job: ClearanceJob, *, actor: str,
               policies: Any | None = None) -> dict[str, Any]:
    from registry.clearance.export import SUBSET_DIGEST_METHOD, subset_digest
    from registry.clearance.summary import modality_counts

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
    subset, subset_items = subset_digest(session, job.id)
    excluded_rows = list(session.scalars(
        select(ClearanceItem).where(ClearanceItem.job_id == job.id,
                                    ClearanceItem.verdict != Verdict.clear.value)
        .order_by(ClearanceItem.seq)))
    by_reason: dict[str, int] = {}
    listed: list[dict[str, Any]] = []
    for row in excluded_rows:
        reason = exclusion_reason(row)
        kind = _reason_kind(reason)
        by_reason[kind] = by_reason.get(kind, 0) + 1
        if len(listed) < MAX_LISTED_EXCLUSIONS:
            listed.append({"key": _public_key(row.item_key), "verdict": row.verdict,
                           "digest": item_digest(row.sha256, row.item_key),
                           "reason": reason})
    issued = utcnow()
    options = {k: v for k, v in (job.dataset_options or {}).items() if k != "allowed_roots"}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": f"clearhouse:clearance-{job.id}/cleared-subset",
            "digest": {"sha256": subset},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "job": {"id": job.id, "owner": job.owner,
                    "started_at": job.started_at.isoformat() if job.started_at else None,
                    "finished_at": job.finished_at.isoformat() if job.finished_at else None},
            "use": job.use,
            "licensee": job.licensee,
            "model": job.model_family,
            "period": _period(session, job, policies, issued),
            "clearedSubset": {
                "items": subset_items,
                **_subset_prefixes(session, job.id),
                "verdicts": [Verdict.clear.value],
                "digestMethod": SUBSET_DIGEST_METHOD,
                "export": f"clearhouse clearances export {job.id} "
                          "--format manifest|webdataset|hf",
            },
            "submittedDataset": {
                "name": PurePosixPath(job.dataset_uri.replace("\\", "/")).name,
                "kind": job.dataset_kind,
                "options": options,
                "items": job.total_items,
                "digest": {"sha256": job.dataset_digest},
                "digestMethod": DIGEST_METHOD,
            },
            "excluded": {
                "items": len(excluded_rows),
                "byVerdict": {v: n for v, n in counts.items() if v != Verdict.clear.value},
                "byReason": by_reason,
                "list": listed,
                "listTruncated": len(excluded_rows) > len(listed),
            },
            "modalities": modality_counts(session, job, verdicts=(Verdict.clear.value,)),
            "policyVersions": job.policy_versions,
            "catalogSnapshot": job.catalog_snapshot,
            "counts": counts,
            "review": {"decided": int(reviewed or 0), "studioContentItems": int(matched or 0)},
            "matchesBySignal": by_signal,
            "matchesByRightsholder": by_holder,
            "matchesByLicence": by_licence,
            "optOutSignalsChecked": list(OPT_OUT_SIGNALS),
            "report": {"digest": {"sha256": report_digest(report)},
                       "mediaType": "application/json"},
            "issuedAt": issued.isoformat(),
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
    actor: Actor | str,
    policies: Any | None = None,
) -> dict[str, Any]:
    """Sign and store the clearance certificate of a finished job with no item left in review.

    The statement's subject is the cleared subset (the items whose verdict is `clear`, as
    `clearances export` writes them); the submitted dataset is named in the predicate. `policies`
    (a PolicySet) lets the predicate say until when the allowing licences run.
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
    statement = _statement(session, job, actor=as_actor(actor).name, policies=policies)
    envelope = sign_statement(statement,
                              private_key=private_key, chain_pem=chain_pem)
    job.certificate = envelope
    job.certified_at = utcnow()
    record(session, actor=actor, action="clearance.certificate.issue",
           subject=f"clearance:{job.id}", dataset_digest=job.dataset_digest,
           subset_digest=json.loads(base64.b64decode(envelope["payload"]))["subject"][0][
               "digest"]["sha256"], counts=counts)
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
    differences: list[dict[str, Any]] = field(default_factory=list)

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
            "differences": self.differences,
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
            raw = base64.b64decode(str(entry["sig"]), validate=True)
        except (binascii.Error, ValueError):
            reasons.append("signature is not valid base64")
            continue
        keyid = _keyid(leaf)
        try:
            SSlibKey.from_crypto(key, keyid=keyid, scheme="ecdsa-sha2-nistp256").verify_signature(
                Signature(keyid, raw.hex()), pae(PAYLOAD_TYPE, payload))
        except (UnverifiedSignatureError, VerificationError):
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
    pairs = dataset_item_digests(dataset, max_bytes=max_bytes)
    actual = dataset_digest([d for _, d in pairs])
    if actual == digest:
        return CertificateCheck(True, "signature valid and trusted; the dataset is the cleared "
                                "subset the certificate covers", statement, signer, digest,
                                dataset_checked=True)
    differences = _differences(statement, pairs, digest)
    return _invalid(
        f"dataset digest mismatch: the certificate covers sha256:{digest}, the dataset is "
        f"sha256:{actual}; " + _describe(differences, statement, actual),
        statement=statement, signer=signer, dataset_digest=digest, dataset_checked=True,
        differences=differences,
    )


def _differences(statement: dict[str, Any], pairs: list[tuple[str, str]],
                 digest: str) -> list[dict[str, Any]]:
    """Which items of the dataset keep it from being the certified subset, and why: the ones the
    certificate names as excluded (with their verdict and reason), items it does not know (added
    or changed since the clearance), and cleared items missing from the dataset."""
    predicate = statement.get("predicate") or {}
    listed = (predicate.get("excluded") or {}).get("list") or []
    excluded = {str(e.get("digest")): e for e in listed if isinstance(e, dict)}
    subset = predicate.get("clearedSubset") or {}
    prefixes = subset.get("itemDigestPrefixes")
    known = set(prefixes) if isinstance(prefixes, list) else None
    found: list[dict[str, Any]] = []
    rest: list[tuple[str, str]] = []
    for key, item_digest_ in pairs:
        entry = excluded.get(item_digest_)
        if entry is not None:
            found.append({"key": key, "digest": item_digest_, "why": "excluded",
                          "verdict": entry.get("verdict"), "reason": entry.get("reason")})
        else:
            rest.append((key, item_digest_))
    if dataset_digest([d for _, d in rest]) == digest:
        return found
    if known is None:  # a subset too large to list: say what the counts say
        expected = subset.get("items")
        return [*found, {"key": None, "digest": None,
                         "why": f"the other {len(rest)} item(s) are not the cleared subset of "
                                f"{expected} item(s) (added, removed or changed)"}]
    remaining = Counter(str(x) for x in prefixes or [])
    unknown = []
    for key, d in rest:
        prefix = d[:PREFIX_HEX]
        if remaining[prefix] > 0:
            remaining[prefix] -= 1
            continue
        why = ("another copy of a cleared item (the subset holds it once)" if prefix in known
               else "not in the cleared subset (added or changed since the clearance)")
        unknown.append({"key": key, "digest": d, "why": why})
    missing = sum(remaining.values())
    extra = [{"key": None, "digest": None,
              "why": f"{missing} cleared item(s) missing from the dataset"}] if missing else []
    return [*found, *unknown, *extra]


def _describe(differences: list[dict[str, Any]], statement: dict[str, Any], actual: str) -> str:
    predicate = statement.get("predicate") or {}
    submitted = ((predicate.get("submittedDataset") or {}).get("digest") or {}).get("sha256")
    parts = []
    if submitted and submitted == actual:
        parts.append("this is the submitted dataset, not the cleared subset "
                     "(`clearhouse clearances export` writes the subset)")
    excluded = [d for d in differences if d["why"] == "excluded"]
    if excluded:
        shown = ", ".join(f"{d['key']} ({d['verdict']}: {d['reason']})" for d in excluded[:20])
        more = f" and {len(excluded) - 20} more" if len(excluded) > 20 else ""
        parts.append(f"{len(excluded)} item(s) the certificate excludes: {shown}{more}")
    others = [d for d in differences if d["why"] != "excluded" and d["key"] is not None]
    if others:
        shown = ", ".join(str(d["key"]) for d in others[:20])
        more = f" and {len(others) - 20} more" if len(others) > 20 else ""
        parts.append(f"{len(others)} item(s) not in the cleared subset: {shown}{more} "
                     f"({others[0]['why']})")
    parts.extend(d["why"] for d in differences if d["key"] is None)
    return "; ".join(parts) or "items added, removed or changed"
