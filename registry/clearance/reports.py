"""Clearance reports: JSON (with a published JSON Schema), CSV, and a standalone HTML page.

The JSON report is the reference; CSV and HTML are views of it. Its `items` are in the dataset's
order (`seq`), so two runs over the same dataset (one of them killed and resumed) give the same
`dataset`, `summary` and `items`; only `job` (ids, timestamps) differs.

`report_digest(report)` is the sha256 of the canonical JSON (sorted keys, no spaces): the value a
certificate carries.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.clearance.models import VERDICTS, ClearanceItem, ClearanceJob

REPORT_SCHEMA_ID = "https://clearhouse.dev/schemas/clearance-report/v1.json"
REPORT_FORMATS = ("json", "csv", "html")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def counts_by_verdict(session: Session, job_id: int) -> dict[str, int]:
    rows = session.execute(
        select(ClearanceItem.verdict, func.count())
        .where(ClearanceItem.job_id == job_id)
        .group_by(ClearanceItem.verdict)
    )
    counts = dict.fromkeys(VERDICTS, 0)
    for verdict, count in rows:
        counts[str(verdict)] = int(count)
    return counts


def job_dict(session: Session, job: ClearanceJob) -> dict[str, Any]:
    """The job's parameters, status and progress (the `job` part of a report; the API's view)."""
    return {
        "id": job.id,
        "status": job.status,
        "use": job.use,
        "licensee": job.licensee,
        "model": job.model_family,
        "owner": job.owner,
        "workers": job.workers,
        "batch_size": job.batch_size,
        "total_items": job.total_items,
        "done_items": job.done_items,
        "policy_versions": job.policy_versions,
        "catalog_snapshot": job.catalog_snapshot,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "certified": job.certificate is not None,
        "summary": counts_by_verdict(session, job.id),
    }


MATCH_KINDS = ("copy", "derivative", "similar")
# Items stored before matches carried a kind: a hash this far inside its threshold was a copy.
_LEGACY_COPY_FRACTION = 0.5
_LEGACY_THRESHOLDS = {"pdq": 31, "phash": 6}


def match_kind(match: dict[str, Any]) -> str:
    """The match's kind (copy, derivative, similar: `registry.fingerprint.MatchKind`). Matches
    stored before kinds existed get it from their signal: the same file or verified keypoints
    are copies, a hash is a copy well inside its threshold and similar near it."""
    kind = match.get("kind")
    if kind in MATCH_KINDS:
        return str(kind)
    signal = str(match.get("signal"))
    if signal in ("sha256", "sift", "orb"):
        return "copy"
    threshold = _LEGACY_THRESHOLDS.get(signal)
    distance = match.get("distance")
    if threshold is None or not isinstance(distance, int | float):
        return "similar"
    return "copy" if distance <= threshold * _LEGACY_COPY_FRACTION else "similar"


def _match_dict(match: dict[str, Any]) -> dict[str, Any]:
    keys = ("asset_id", "asset_sha256", "signal", "distance", "confidence", "region", "time_s",
            "transform", "decision", "explanation", "rule", "decided_by")
    return {**{k: match.get(k) for k in keys}, "kind": match_kind(match)}


def item_dict(item: ClearanceItem) -> dict[str, Any]:
    review = None
    if item.review_decision is not None:
        review = {"decision": item.review_decision, "by": item.reviewed_by,
                  "at": _iso(item.reviewed_at), "comment": item.review_comment}
    return {
        "item": item.id,
        "key": item.item_key,
        "path": item.path,
        "id": item.item_id,
        "caption": item.caption,
        "url": item.url,
        "sha256": item.sha256,
        "size_bytes": item.size_bytes,
        "verdict": item.verdict,
        "machine_verdict": item.machine_verdict,
        "matches": [_match_dict(m) for m in item.matches],
        "signals": item.signals or [],
        "error": item.error,
        "review": review,
    }


def build_report(session: Session, job: ClearanceJob) -> dict[str, Any]:
    items = list(session.scalars(
        select(ClearanceItem).where(ClearanceItem.job_id == job.id).order_by(ClearanceItem.seq)
    ))
    summary = dict.fromkeys(VERDICTS, 0)
    for item in items:
        summary[item.verdict] = summary.get(item.verdict, 0) + 1
    summary_total = {**summary, "total": len(items)}
    job_data = job_dict(session, job)
    job_data.pop("summary")
    return {
        "$schema": REPORT_SCHEMA_ID,
        "job": job_data,
        "dataset": {
            "uri": job.dataset_uri,
            "kind": job.dataset_kind,
            "options": {k: v for k, v in (job.dataset_options or {}).items()
                        if k != "allowed_roots"},
            "digest": {"sha256": job.dataset_digest} if job.dataset_digest else None,
            "items": len(items),
        },
        "summary": summary_total,
        "items": [item_dict(item) for item in items],
    }


def report_digest(report: dict[str, Any]) -> str:
    canonical = json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The parts of a report that depend only on the dataset, catalog and policies (not on the
    run): for comparing two runs. Row ids and review timestamps are dropped."""
    items = []
    for item in report["items"]:
        data = {k: v for k, v in item.items() if k not in ("item", "review")}
        items.append(data)
    return {"dataset": report["dataset"], "summary": report["summary"], "items": items}


CSV_COLUMNS = ("path", "key", "id", "sha256", "verdict", "machine_verdict", "error", "signals",
               "asset_id",
               "asset_sha256", "kind", "signal", "distance", "region", "time_s", "decision",
               "explanation",
               "review_decision", "reviewed_by", "review_comment")


def _cell(value: Any) -> Any:
    """Neutralise a text cell a spreadsheet would run as a formula (`= + - @`, tab, CR): a
    dataset's file names and captions come from whoever made the dataset."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _SafeWriter(csv.DictWriter):  # type: ignore[type-arg]
    def writerow(self, rowdict: Any) -> Any:
        return super().writerow({k: _cell(v) for k, v in rowdict.items()})


def report_csv(report: dict[str, Any]) -> str:
    """One row per (item, match); an item without matches has one row with empty match columns.
    Cells that would start a spreadsheet formula are prefixed with `'`."""
    out = io.StringIO()
    writer = _SafeWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for item in report["items"]:
        review = item.get("review") or {}
        base = {k: item.get(k) for k in ("path", "key", "id", "sha256", "verdict",
                                          "machine_verdict", "error")}
        base.update(review_decision=review.get("decision"), reviewed_by=review.get("by"),
                    review_comment=review.get("comment"),
                    signals="; ".join(f"{s['signal']}={s['permission']} ({s['value']})"
                                      for s in item.get("signals") or []))
        matches = item["matches"] or [{}]
        for match in matches:
            row = dict(base)
            for k in ("asset_id", "asset_sha256", "kind", "signal", "distance", "decision",
                      "explanation", "time_s"):
                row[k] = match.get(k)
            region = match.get("region")
            row["region"] = json.dumps(region) if region is not None else None
            writer.writerow(row)
    return out.getvalue()


def report_html(
    session: Session, job: ClearanceJob, report: dict[str, Any], *, store: Any | None
) -> str:
    """A standalone page: summary first, blocked and review items first, filters and paging;
    every thumbnail an inline data: URI (no external file, no network). See report_html.py."""
    from registry.clearance.report_html import render_html

    return render_html(session, job, report, store=store)


def render_report(
    session: Session, job: ClearanceJob, fmt: str, *, store: Any | None = None
) -> tuple[str, str]:
    """(text, media type) of the report of `job` in `fmt` (json, csv or html)."""
    from registry.errors import InvalidInput

    report = build_report(session, job)
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False), "application/json"
    if fmt == "csv":
        return report_csv(report), "text/csv"
    if fmt == "html":
        return report_html(session, job, report, store=store), "text/html"
    raise InvalidInput(f"report format {fmt!r} is not one of {', '.join(REPORT_FORMATS)}")


_MATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["asset_id", "asset_sha256", "signal", "distance", "decision", "explanation"],
    "properties": {
        "asset_id": {"type": "integer"},
        "asset_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "signal": {"type": "string", "description": "sha256 for an exact copy, else the "
                   "fingerprint signal (pdq, phash, sift, ...)"},
        "distance": {"type": ["number", "null"]},
        "confidence": {"type": ["number", "null"]},
        "region": {"description": "where in the item the asset was found, if known"},
        "time_s": {"type": ["number", "null"], "description": "video time code in seconds"},
        "transform": {"type": ["string", "null"]},
        "kind": {"enum": list(MATCH_KINDS), "description": "copy (the asset, verified), "
                 "derivative (a verified region of an edited version) or similar (a hash near "
                 "its threshold, not verified: always review)"},
        "decision": {"enum": ["allowed", "denied", "review"]},
        "explanation": {"type": ["string", "null"]},
        "rule": {},
        "decided_by": {},
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": REPORT_SCHEMA_ID,
    "title": "Clearhouse clearance report",
    "type": "object",
    "required": ["job", "dataset", "summary", "items"],
    "properties": {
        "$schema": {"type": "string"},
        "job": {
            "type": "object",
            "required": ["id", "status", "use", "licensee", "model"],
            "properties": {
                "id": {"type": "integer"},
                "status": {"enum": ["pending", "running", "finished", "failed"]},
                "use": {"enum": ["ai_training", "ai_generative_training", "ai_inference",
                                 "data_mining"]},
                "licensee": {"type": "string"},
                "model": {"type": ["string", "null"]},
                "policy_versions": {"type": "array"},
                "catalog_snapshot": {"type": "object"},
            },
        },
        "dataset": {
            "type": "object",
            "required": ["uri", "kind", "digest", "items"],
            "properties": {
                "uri": {"type": "string"},
                "kind": {"enum": ["folder", "archive", "webdataset", "manifest",
                                          "croissant"]},
                "digest": {"type": ["object", "null"],
                           "description": "sha256 over the sorted per-item sha256 digests, "
                           "newline-joined"},
                "items": {"type": "integer"},
            },
        },
        "summary": {
            "type": "object",
            "required": [*VERDICTS, "total"],
            "properties": {v: {"type": "integer"} for v in (*VERDICTS, "total")},
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "sha256", "verdict", "matches", "error"],
                "properties": {
                    "path": {"type": "string"},
                    "key": {"type": "string"},
                    "id": {"type": ["string", "null"]},
                    "url": {"type": ["string", "null"],
                            "description": "where the item came from, when the dataset says"},
                    "sha256": {"type": ["string", "null"]},
                    "verdict": {"enum": list(VERDICTS)},
                    "machine_verdict": {"enum": list(VERDICTS)},
                    "matches": {"type": "array", "items": _MATCH_SCHEMA},
                    "signals": {
                        "type": "array",
                        "description": "opt-out signals the item carries for the job's use",
                        "items": {
                            "type": "object",
                            "required": ["signal", "value", "permission"],
                            "properties": {
                                "signal": {"enum": ["iptc-plus", "tdmrep", "c2pa"]},
                                "value": {"type": "string"},
                                "permission": {"enum": ["allowed", "constrained",
                                                        "notAllowed"]},
                            },
                        },
                    },
                    "error": {"type": ["string", "null"]},
                    "review": {"type": ["object", "null"]},
                },
            },
        },
    },
}
