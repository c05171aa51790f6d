"""The manifest repository: every manifest we sign, found again from the content.

`record_manifest` stores a signed output's manifest store with the signed file's sha256, signer,
time, actions, ingredients, training permissions, its ISCC soft binding and our PDQ hashes.
Records are never rewritten: rotating the signing key changes nothing here, and the certificate
that signed a manifest is inside its store.

Lookups, as the C2PA Soft Binding Resolution API asks them:
- `find_by_binding(alg, value)`: `io.iscc.v0` (the soft binding in the manifest: exact, then
  near codes within `ISCC_MATCH_BITS`) or our `com.clearhouse.pdq` (within the PDQ threshold);
- `find_by_content(bytes)`: the signed file's sha256, then the picture's ISCC code and PDQ hashes
  (the whole query and inside its uniform borders) against the whole signed output and its 80%
  windows. PDQ hashes of quality < 50 are never matched on, on either side (a flat sky matched a
  flat wallpaper at 12 bits without this gate, FIELD-NOTES).

The lookups go through `ManifestIndex`: faiss binary indexes over the stored hashes, filled
incrementally from the rows added since it last looked (records are append-only), so a lookup
never loops over the repository in Python. A door keeps one ManifestIndex for its lifetime.

`similarityScore` (0-100): 100 for the same bytes or the same ISCC code; for a PDQ hit at d bits
`100 * (1 - 0.5 * d / (threshold + 1))` (52 at the threshold of 31), the catalog's confidence.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.catalog import sha256_bytes
from registry.errors import InvalidInput, NotFound
from registry.fingerprint import get_signal_type
from registry.media import load_image, probe
from registry.media.loader import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from registry.provenance.errors import InvalidSoftBinding
from registry.provenance.models import ManifestFingerprint, ManifestRecord
from registry.provenance.sign import SignedMedia
from registry.provenance.softbinding import (
    ISCC_ALG,
    PDQ_ALG,
    iscc_code_bytes,
    iscc_code_from_bytes,
    iscc_code_from_value,
    iscc_image_code,
    query_fingerprints,
)

SHA256_ALG = "sha256"  # an exact copy of the signed file (not a soft binding)
# ISCC image codes are 64-bit DCT hashes, like pHash: near copies differ by a few bits.
ISCC_MATCH_BITS = 6
PDQ_MATCH_BITS = 31  # the PDQ reference's confident match
DEFAULT_MAX_RESULTS = 10
SUPPORTED_ALGORITHMS = {
    "watermarks": [],
    "fingerprints": [{"alg": ISCC_ALG}, {"alg": PDQ_ALG}],
}


@dataclass(frozen=True)
class RepositoryMatch:
    """One stored manifest found for a query."""

    manifest_id: str
    record_id: int
    alg: str  # sha256 | io.iscc.v0 | com.clearhouse.pdq
    distance: int  # bits (0 for sha256)
    similarity: int  # 0-100
    region: str | None = None  # which stored hash met the query (full, w80/centre, ...)

    def as_dict(self) -> dict[str, Any]:
        return {"manifestId": self.manifest_id, "similarityScore": self.similarity,
                "alg": self.alg, "distance": self.distance, "region": self.region}


def pdq_similarity(distance: int, threshold: int = PDQ_MATCH_BITS) -> int:
    return max(0, round(100 * (1 - 0.5 * distance / (threshold + 1))))


def _subject_attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def studio_name(cert: x509.Certificate, configured: str | None = None) -> str:
    """Who the studio is: as configured, else the signing certificate's organisation (O), else
    its common name."""
    return (configured or _subject_attr(cert, NameOID.ORGANIZATION_NAME)
            or _subject_attr(cert, NameOID.COMMON_NAME) or cert.subject.rfc4514_string())


def _actions(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        if assertion.get("label") != "c2pa.actions":
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            agent = action.get("softwareAgent")
            out.append({"action": action.get("action"),
                        "digitalSourceType": action.get("digitalSourceType"),
                        "softwareAgent": agent.get("name") if isinstance(agent, Mapping)
                        else agent})
    return out


def record_manifest(
    session: Session,
    signed: SignedMedia,
    *,
    signing_cert: x509.Certificate,
    studio: str,
    actor: str,
    training_source: str,
    model: str | None = None,
) -> ManifestRecord:
    """Store what we just signed. Raises InvalidInput if c2pa gave no manifest label/store."""
    if not signed.manifest_label or not signed.store:
        raise InvalidInput("the signed file has no readable manifest to keep")
    cert_der = signing_cert.public_bytes(serialization.Encoding.DER)
    width, height = signed.size or (None, None)
    record = ManifestRecord(
        manifest_id=signed.manifest_label,
        signed_sha256=sha256_bytes(signed.data),
        media_type=signed.media_type,
        title=str(signed.manifest.get("title") or "")[:500] or None,
        width=width,
        height=height,
        store=signed.store,
        store_sha256=hashlib.sha256(signed.store).hexdigest(),
        studio=studio[:200],
        signer=signing_cert.subject.rfc4514_string()[:500],
        signer_common_name=_subject_attr(signing_cert, NameOID.COMMON_NAME),
        signer_serial=f"{signing_cert.serial_number:x}",
        signer_cert_sha256=hashlib.sha256(cert_der).hexdigest(),
        actor=actor[:200],
        model=model,
        actions=_actions(signed.manifest),
        ingredients=[
            {"title": i.title, "relationship": i.relationship, "asset_id": i.asset_id,
             "sha256": i.sha256, "linked_by": i.match.get("signal") if i.match else None}
            for i in signed.ingredients
        ],
        training_mining={u: p.as_dict() for u, p in signed.training.items()},
        training_source=training_source,
        iscc=signed.iscc,
    )
    session.add(record)
    session.flush()
    rows = [ManifestFingerprint(record_id=record.id, alg=f.alg, region=f.region, value=f.value,
                                quality=f.quality) for f in signed.fingerprints]
    if signed.iscc:
        rows.append(ManifestFingerprint(record_id=record.id, alg=ISCC_ALG, region="full",
                                        value=iscc_code_bytes(signed.iscc), quality=100))
    session.add_all(rows)
    session.flush()
    return record


def get_manifest_record(session: Session, manifest_id: str) -> ManifestRecord:
    """The stored record of a manifest by its label. Raises NotFound."""
    record = find_manifest_record(session, manifest_id)
    if record is None:
        raise NotFound("manifest", manifest_id)
    return record


def find_manifest_record(session: Session, manifest_id: str) -> ManifestRecord | None:
    return session.scalars(
        select(ManifestRecord).where(ManifestRecord.manifest_id == manifest_id)
    ).first()


def records_by_id(session: Session, ids: Sequence[int]) -> dict[int, ManifestRecord]:
    if not ids:
        return {}
    rows = session.scalars(select(ManifestRecord).where(ManifestRecord.id.in_(list(ids))))
    return {r.id: r for r in rows}


@dataclass
class _Table:
    """One faiss binary index and, per row, the record id, region and quality."""

    bits: int
    index: Any = None
    record_ids: list[int] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    qualities: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index = faiss.IndexBinaryFlat(self.bits)

    def add(self, rows: list[tuple[int, str, bytes, int]]) -> None:
        if not rows:
            return
        codes = np.frombuffer(b"".join(r[2] for r in rows), np.uint8).reshape(len(rows), -1)
        self.index.add(codes)
        for record_id, region, _, quality in rows:
            self.record_ids.append(record_id)
            self.regions.append(region)
            self.qualities.append(quality)

    def search(self, probes: list[bytes], radius: int) -> list[tuple[int, str, int]]:
        """(record id, region, distance) of every stored hash within `radius` of any probe."""
        if not probes or self.index.ntotal == 0:
            return []
        codes = np.frombuffer(b"".join(probes), np.uint8).reshape(len(probes), -1)
        # A lookup is a handful of probes: one thread. With faiss' default OpenMP threads, a
        # probe between other work took 50 ms instead of 0.5 ms on a busy 2-core machine
        # (bench/bench_manifest_repository.py). The setting is restored for the rest of the
        # process.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            # faiss range_search returns distances strictly below the radius (FIELD-NOTES).
            lims, dist, ids = self.index.range_search(codes, radius + 1)
        finally:
            faiss.omp_set_num_threads(threads)
        out = []
        for q in range(len(probes)):
            for j in range(lims[q], lims[q + 1]):
                row = int(ids[j])
                out.append((self.record_ids[row], self.regions[row], int(dist[j])))
        return out


class ManifestIndex:
    """In-memory faiss indexes over the repository's hashes, caught up with the database on
    every lookup (only the rows added since the last one are read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_id = 0
        self._pdq = _Table(256)
        self._iscc = _Table(64)

    def refresh(self, session: Session) -> None:
        with self._lock:
            newest = session.scalar(select(func.max(ManifestFingerprint.id))) or 0
            if newest <= self._last_id:
                return
            rows = session.execute(
                select(ManifestFingerprint.id, ManifestFingerprint.record_id,
                       ManifestFingerprint.alg, ManifestFingerprint.region,
                       ManifestFingerprint.value, ManifestFingerprint.quality)
                .where(ManifestFingerprint.id > self._last_id,
                       ManifestFingerprint.id <= newest)
                .order_by(ManifestFingerprint.id)
            ).all()
            pdq_threshold = get_signal_type("pdq").quality_threshold
            pdq = [(r.record_id, r.region, bytes(r.value), r.quality) for r in rows
                   if r.alg == PDQ_ALG and r.quality >= pdq_threshold and len(r.value) == 32]
            iscc = [(r.record_id, r.region, bytes(r.value)[2:], r.quality) for r in rows
                    if r.alg == ISCC_ALG and len(r.value) == 10]
            self._pdq.add(pdq)
            self._iscc.add(iscc)
            self._last_id = newest

    @property
    def size(self) -> int:
        return int(self._pdq.index.ntotal + self._iscc.index.ntotal)

    def search_pdq(self, probes: list[bytes], radius: int) -> list[tuple[int, str, int]]:
        with self._lock:
            return self._pdq.search(probes, radius)

    def search_iscc(self, digests: list[bytes], radius: int) -> list[tuple[int, str, int]]:
        with self._lock:
            return self._iscc.search(digests, radius)


def _best(hits: list[RepositoryMatch]) -> list[RepositoryMatch]:
    """Best hit per manifest, best first (highest score, then smallest distance, newest)."""
    per: dict[int, RepositoryMatch] = {}
    for hit in hits:
        held = per.get(hit.record_id)
        if held is None or (hit.similarity, -hit.distance) > (held.similarity, -held.distance):
            per[hit.record_id] = hit
    return sorted(per.values(), key=lambda m: (-m.similarity, m.distance, -m.record_id))


def _labels(session: Session, hits: list[tuple[int, str, int, str, int]]
            ) -> list[RepositoryMatch]:
    records = records_by_id(session, sorted({h[0] for h in hits}))
    return [RepositoryMatch(records[rid].manifest_id, rid, alg, d, score, region)
            for rid, region, d, alg, score in hits if rid in records]


def _iscc_hits(index: ManifestIndex, code: str) -> list[tuple[int, str, int, str, int]]:
    digest = iscc_code_bytes(code)[2:]
    return [(rid, region, d, ISCC_ALG, 100 if d == 0 else pdq_similarity(d, ISCC_MATCH_BITS))
            for rid, region, d in index.search_iscc([digest], ISCC_MATCH_BITS)]


def find_by_binding(
    session: Session,
    index: ManifestIndex,
    *,
    alg: str,
    value: str,
    max_results: int = DEFAULT_MAX_RESULTS,
) -> list[RepositoryMatch]:
    """Manifests whose soft binding (or our fingerprint) matches `value`, best first.

    `io.iscc.v0`: base64 of the ISCC unit (or the `ISCC:` text); `com.clearhouse.pdq`: base64 of
    the 32-byte PDQ hash. Raises InvalidSoftBinding for another algorithm or a malformed value.
    """
    index.refresh(session)
    if alg == ISCC_ALG:
        hits = _iscc_hits(index, iscc_code_from_value(value))
    elif alg == PDQ_ALG:
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except binascii.Error as exc:
            raise InvalidSoftBinding(f"value: not base64 ({exc})") from exc
        if len(raw) != 32:
            raise InvalidSoftBinding(f"value: a PDQ hash is 32 bytes, got {len(raw)}")
        hits = [(rid, region, d, PDQ_ALG, pdq_similarity(d))
                for rid, region, d in index.search_pdq([raw], PDQ_MATCH_BITS)]
    else:
        known = ", ".join(a["alg"] for a in SUPPORTED_ALGORITHMS["fingerprints"])
        raise InvalidSoftBinding(f"alg: {alg!r} is not supported here (supported: {known})",
                           detail={"alg": alg})
    return _best(_labels(session, hits))[:max_results]


def find_by_content(
    session: Session,
    index: ManifestIndex,
    data: bytes,
    *,
    image: Image.Image | None,
    max_results: int = DEFAULT_MAX_RESULTS,
) -> list[RepositoryMatch]:
    """Manifests of this content: the same signed file (sha256), the same or a near ISCC image
    code, or our PDQ hashes within the threshold (whole query, or inside its borders, against
    the whole signed output or one of its 80% windows). `image`: the decoded picture (None for
    media we do not fingerprint, e.g. video: then only the sha256 is looked up)."""
    index.refresh(session)
    exact = session.scalars(
        select(ManifestRecord.id).where(ManifestRecord.signed_sha256 == sha256_bytes(data))
    ).all()
    hits: list[tuple[int, str, int, str, int]] = [(rid, "file", 0, SHA256_ALG, 100)
                                                  for rid in exact]
    if image is not None:
        pdq_threshold = get_signal_type("pdq").quality_threshold
        queries = query_fingerprints(image)
        probes = [f.value for f in queries if f.quality >= pdq_threshold]
        if queries[0].quality >= pdq_threshold:
            # A flat picture has a near-constant ISCC code too: it says nothing on either side.
            hits += _iscc_hits(index, iscc_image_code(image))
        hits += [(rid, region, d, PDQ_ALG, pdq_similarity(d))
                 for rid, region, d in index.search_pdq(probes, PDQ_MATCH_BITS)]
    return _best(_labels(session, hits))[:max_results]


def find_by_file(
    session: Session,
    index: ManifestIndex,
    data: bytes,
    *,
    name: str,
    max_results: int = DEFAULT_MAX_RESULTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[RepositoryMatch]:
    """`find_by_content` for an uploaded file, through the safe loader (format from the bytes,
    byte and pixel limits). Raises UnsupportedMedia / CorruptMedia / MediaTooLarge."""
    info = probe(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels)
    image = load_image(data, name=name, max_bytes=max_bytes, max_pixels=max_pixels) \
        if info.kind == "image" else None
    return find_by_content(session, index, data, image=image, max_results=max_results)


__all__ = [
    "DEFAULT_MAX_RESULTS",
    "ISCC_MATCH_BITS",
    "SUPPORTED_ALGORITHMS",
    "ManifestIndex",
    "RepositoryMatch",
    "find_by_binding",
    "find_by_content",
    "find_by_file",
    "find_manifest_record",
    "get_manifest_record",
    "iscc_code_from_bytes",
    "record_manifest",
    "studio_name",
]
