"""The EU AI Act training-content summary: what the registry knows for the Commission's template
for the public summary of training content (Article 53(1)(d), template of July 2025).

`build_eu_summary(session, jobs)` describes the training content of one or more finished clearance
jobs: the cleared subsets (items whose verdict is `clear` after review) are what the model trains
on. It fills the template's sections from what the registry knows and lists, under
`providerFields`, what only the provider can say (each such field is `null` in the document):

- section 1 (general): models, modalities with the template's size bands (images: < 1M, 1M-1B,
  > 1B items), content types (media formats sniffed from the items' bytes), dates of the clearances;
- section 2 (data sources): the submitted datasets (2.1, public or not is the provider's call),
  licensed private data (2.2: rightsholders and licences from the catalog that allowed cleared
  items), crawled data (2.3: the most relevant domains, where item URLs are known);
- section 3.1 (text-and-data-mining opt-outs): the machine-readable signals checked (TDMRep, IPTC
  PLUS, C2PA/CAWG), how many items each reserved, and how they were honoured (excluded from the
  cleared subset, or licensed by the rightsholder).

`render_markdown(summary)` prints the same document for people. The JSON Schema ships as
`eu_summary.schema.json` next to this module (`EU_SUMMARY_SCHEMA`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.catalog.models import Asset, Rightsholder
from registry.clearance.datasets import DatasetItem, read_head
from registry.clearance.models import ClearanceItem, ClearanceJob, JobStatus, Verdict
from registry.clearance.runner import dataset_of
from registry.db import utcnow
from registry.errors import Conflict, InvalidInput, RegistryError

SUMMARY_SCHEMA_ID = "https://clearhouse.dev/schemas/eu-training-content-summary/v1.json"
TEMPLATE = ("European Commission, template for the public summary of training content for "
            "general-purpose AI models (AI Act Article 53(1)(d)), July 2025")
OPT_OUT_SIGNALS = {
    "tdmrep": "W3C TDMRep (tdm:reservation, tdm:policy) in the item's XMP",
    "iptc-plus": "IPTC / PLUS Data Mining (plus:DataMining) in the item's XMP",
    "c2pa": "C2PA / CAWG training-and-data-mining assertion in an embedded C2PA manifest",
}
TOP_DOMAINS = 10
_VIDEO_BAND_NOTE = ("the template bands video by hours; durations are not measured here")


def _load_schema() -> dict[str, Any]:
    text = resources.files("registry.clearance").joinpath("eu_summary.schema.json").read_text(
        encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


EU_SUMMARY_SCHEMA = _load_schema()


def sniff(head: bytes) -> tuple[str, str]:
    """(modality, format) from an item's first bytes: image JPEG/PNG/GIF/WebP/TIFF/AVIF, video
    MP4/MOV/WebM/Matroska, else ("unknown", "unknown")."""
    if head[:3] == b"\xff\xd8\xff":
        return "image", "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image", "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image", "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "WebP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image", "TIFF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
            return "image", "AVIF/HEIF"
        return "video", "MOV" if brand[:2] == b"qt" else "MP4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video", "WebM" if b"webm" in head else "Matroska"
    return "unknown", "unknown"


def image_size_band(count: int) -> str:
    """The template's size band for images (number of images)."""
    if count < 1_000_000:
        return "< 1M images"
    if count <= 1_000_000_000:
        return "1M-1B images"
    return "> 1B images"


def _dataset_items(job: ClearanceJob) -> dict[str, DatasetItem]:
    try:
        return {item.key: item for item in dataset_of(job).items()}
    except RegistryError:
        return {}  # the dataset is gone: modalities and URLs are then unknown


def _selected(session: Session, job_id: int, verdicts: Sequence[str] | None
              ) -> list[ClearanceItem]:
    query = select(ClearanceItem).where(ClearanceItem.job_id == job_id)
    if verdicts is not None:
        query = query.where(ClearanceItem.verdict.in_(list(verdicts)))
    return list(session.scalars(query.order_by(ClearanceItem.seq)))


def _formats(rows: Sequence[ClearanceItem], items: dict[str, DatasetItem]) -> Counter[
        tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for row in rows:
        source = items.get(row.item_key)
        found[sniff(read_head(source)) if source is not None else ("unknown", "unknown")] += 1
    return found


def _modalities(formats: Counter[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    per: Counter[str] = Counter()
    for (modality, _), n in formats.items():
        per[modality] += n
    out: dict[str, dict[str, Any]] = {}
    for modality, n in sorted(per.items()):
        band = image_size_band(n) if modality == "image" else None
        entry: dict[str, Any] = {"items": n, "sizeBand": band}
        if modality == "video":
            entry["note"] = _VIDEO_BAND_NOTE
        out[modality] = entry
    return out


def modality_counts(
    session: Session, job: ClearanceJob, *, verdicts: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Items per modality (image, video, unknown) with the template's size band, over the items
    of `job` with one of `verdicts` (all when None). Reads each item's first bytes again."""
    rows = _selected(session, job.id, verdicts)
    return _modalities(_formats(rows, _dataset_items(job)))


def _licensed(session: Session, rows: Sequence[ClearanceItem]) -> list[dict[str, Any]]:
    """Cleared items with studio content, per rightsholder and licence (from the catalog); a
    match approved in legal review counts under the licence that sent it to review."""
    per_asset: dict[int, set[str]] = {}
    items_per: dict[tuple[int, str], set[int]] = {}
    for row in rows:  # cleared items: every match was allowed, or approved in legal review
        for match in row.matches or []:
            asset_id = int(match["asset_id"])
            licence = str(match.get("decided_by") or "").split("#")[0] or "unknown"
            per_asset.setdefault(asset_id, set()).add(licence)
            items_per.setdefault((asset_id, licence), set()).add(row.id)
    if not per_asset:
        return []
    holders = {asset_id: name for asset_id, name in session.execute(
        select(Asset.id, Rightsholder.name)
        .join(Rightsholder, Asset.rightsholder_id == Rightsholder.id)
        .where(Asset.id.in_(list(per_asset))))}
    grouped: dict[str, dict[str, set[int]]] = {}
    for (asset_id, licence), item_ids in items_per.items():
        holder = holders.get(asset_id, "unknown rightsholder")
        grouped.setdefault(holder, {}).setdefault(licence, set()).update(item_ids)
    out = []
    for holder in sorted(grouped):
        licences = grouped[holder]
        all_items = set().union(*licences.values())
        out.append({"rightsholder": holder, "items": len(all_items),
                    "licences": [{"licence": lic, "items": len(ids)}
                                 for lic, ids in sorted(licences.items())]})
    return out


def _reserving(row: ClearanceItem) -> dict[str, str]:
    """signal -> permission for the signals of `row` that reserve the use."""
    found: dict[str, str] = {}
    for signal in row.signals or []:
        permission = str(signal.get("permission"))
        if permission in ("notAllowed", "constrained"):
            name = str(signal.get("signal"))
            if found.get(name) != "notAllowed":
                found[name] = permission
    return found


def build_eu_summary(session: Session, jobs: Sequence[ClearanceJob]) -> dict[str, Any]:
    """The training-content summary over the cleared subsets of `jobs` (finished jobs).

    Raises InvalidInput when no job is given, Conflict when a job is not finished or still has
    items awaiting legal review (its training content is not settled yet).
    """
    if not jobs:
        raise InvalidInput("name at least one clearance job")
    for job in jobs:
        if job.status != JobStatus.finished.value:
            raise Conflict(f"clearance job {job.id} is {job.status}, not finished")
    job_rows: list[dict[str, Any]] = []
    formats: Counter[tuple[str, str]] = Counter()
    licensed: list[ClearanceItem] = []
    domains: Counter[str] = Counter()
    with_url = 0
    signal_stats = {name: {"itemsReserving": 0, "notAllowed": 0, "constrained": 0,
                           "excluded": 0, "licensed": 0} for name in OPT_OUT_SIGNALS}
    optout_excluded = 0
    cleared_total = 0
    for job in jobs:
        rows = _selected(session, job.id, None)
        waiting = sum(1 for r in rows if r.verdict == Verdict.review.value)
        if waiting:
            raise Conflict(f"clearance job {job.id} has {waiting} item(s) awaiting legal review")
        cleared = [r for r in rows if r.verdict == Verdict.clear.value]
        cleared_total += len(cleared)
        items = _dataset_items(job)
        formats += _formats(cleared, items)
        licensed.extend(cleared)
        for row in cleared:
            source = items.get(row.item_key)
            url = row.url or (source.url if source is not None else None)
            if url:
                with_url += 1
                host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
                if host:
                    domains[host] += 1
        for row in rows:
            reserving = _reserving(row)
            for name, permission in reserving.items():
                stats = signal_stats.setdefault(name, {"itemsReserving": 0, "notAllowed": 0,
                                                       "constrained": 0, "excluded": 0,
                                                       "licensed": 0})
                stats["itemsReserving"] += 1
                stats[permission] += 1
                if row.verdict == Verdict.clear.value:
                    stats["licensed"] += 1
                else:
                    stats["excluded"] += 1
            if reserving and row.verdict != Verdict.clear.value and not row.matches:
                optout_excluded += 1
        job_rows.append({
            "id": job.id, "use": job.use, "licensee": job.licensee, "model": job.model_family,
            "dataset": {"name": job.dataset_uri.replace("\\", "/").rsplit("/", 1)[-1],
                        "kind": job.dataset_kind, "items": job.total_items,
                        "digest": job.dataset_digest},
            "clearedItems": len(cleared),
            "excludedItems": len(rows) - len(cleared),
            "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
            "certified": job.certificate is not None,
        })
    finished = sorted(j["finishedAt"] for j in job_rows if j["finishedAt"])
    content_types = [{"modality": m, "format": f, "items": n}
                     for (m, f), n in sorted(formats.items())]
    summary: dict[str, Any] = {
        "$schema": SUMMARY_SCHEMA_ID,
        "template": TEMPLATE,
        "generatedAt": utcnow().isoformat(),
        "jobs": job_rows,
        "trainingItems": cleared_total,
        "section1": {
            "provider": None,
            "models": sorted({str(j["model"]) for j in job_rows if j["model"]}),
            "modalities": _modalities(formats),
            "contentTypes": content_types,
            "contentTypeDescription": None,
            "latestCollectionDate": None,
            "clearedBetween": {"from": finished[0] if finished else None,
                               "to": finished[-1] if finished else None},
        },
        "section2": {
            "publicDatasets": {
                "submittedDatasets": [{"job": j["id"], **j["dataset"]} for j in job_rows],
                "whichArePublic": None,
            },
            "privateData": {
                "licensedFromRightsholders": _licensed(session, licensed),
                "otherThirdParty": None,
            },
            "crawledData": {
                "itemsWithKnownUrl": with_url,
                "topDomains": [{"domain": d, "items": n}
                               for d, n in domains.most_common(TOP_DOMAINS)],
                "crawlers": None,
                "collectionPeriod": None,
            },
            "userData": None,
            "syntheticData": None,
            "otherSources": None,
        },
        "section3": {
            "tdmOptOut": {
                "signalsChecked": [{"signal": name, "standard": text}
                                   for name, text in OPT_OUT_SIGNALS.items()],
                "bySignal": [{"signal": name, **stats}
                             for name, stats in sorted(signal_stats.items())],
                "itemsExcludedForOptOut": optout_excluded,
                "measure": "every item was read for the signals above; an item whose signals "
                           "reserve the use (notAllowed) was excluded from the training content, "
                           "one whose signals ask for terms (constrained) went to legal review, "
                           "unless the rightsholder's licence in the studio catalog grants the "
                           "use (counted as licensed). The most restrictive signal wins.",
                "thirdPartySupplierMeasures": None,
            },
            "illegalContent": None,
        },
        "providerFields": [
            "section1.provider", "section1.contentTypeDescription",
            "section1.latestCollectionDate", "section2.publicDatasets.whichArePublic",
            "section2.privateData.otherThirdParty", "section2.crawledData.crawlers",
            "section2.crawledData.collectionPeriod", "section2.userData",
            "section2.syntheticData", "section2.otherSources",
            "section3.tdmOptOut.thirdPartySupplierMeasures", "section3.illegalContent",
        ],
    }
    return summary


def _cell(value: Any) -> str:
    return "*(left for the provider)*" if value is None else str(value)


def render_markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown, section by section (fields left for the provider marked)."""
    s1, s2, s3 = summary["section1"], summary["section2"], summary["section3"]
    lines = [
        "# Public summary of training content (EU AI Act, Article 53(1)(d))",
        "",
        f"Template: {summary['template']}. Generated {summary['generatedAt']} by Clearhouse "
        f"from clearance job(s) {', '.join(str(j['id']) for j in summary['jobs'])}; "
        f"{summary['trainingItems']} training item(s) (the cleared subsets).",
        "",
        "## 1. General information",
        "",
        f"- Provider: {_cell(s1['provider'])}",
        f"- Model(s): {', '.join(s1['models']) or _cell(None)}",
        f"- Latest data collection date: {_cell(s1['latestCollectionDate'])} (cleared between "
        f"{s1['clearedBetween']['from']} and {s1['clearedBetween']['to']})",
        "",
        "| modality | items | size band |",
        "| --- | ---: | --- |",
    ]
    for modality, entry in s1["modalities"].items():
        lines.append(f"| {modality} | {entry['items']} | {_cell(entry['sizeBand'])} |")
    lines += ["", "Content types (formats read from the items' bytes): " + (", ".join(
        f"{c['format']} {c['items']}" for c in s1["contentTypes"]) or "none")
        + f"; description: {_cell(s1['contentTypeDescription'])}", "",
        "## 2. List of data sources", "", "### 2.1 Datasets submitted (public datasets)", ""]
    for d in s2["publicDatasets"]["submittedDatasets"]:
        lines.append(f"- job {d['job']}: `{d['name']}` ({d['kind']}, {d['items']} items)")
    lines += ["", f"Which are publicly available: {_cell(s2['publicDatasets']['whichArePublic'])}",
              "", "### 2.2 Private data licensed from rightsholders", ""]
    holders = s2["privateData"]["licensedFromRightsholders"]
    if not holders:
        lines.append("- none in the studio catalog")
    for h in holders:
        licences = ", ".join(f"{lic['licence']} ({lic['items']})" for lic in h["licences"])
        lines.append(f"- {h['rightsholder']}: {h['items']} item(s); licences: {licences}")
    lines += ["", f"Other third-party data: {_cell(s2['privateData']['otherThirdParty'])}", "",
              "### 2.3 Data crawled from the web", "",
              f"- Items with a known URL: {s2['crawledData']['itemsWithKnownUrl']}",
              "- Most relevant domains: " + (", ".join(
                  f"{d['domain']} ({d['items']})" for d in s2["crawledData"]["topDomains"])
                  or "none known"),
              f"- Crawlers: {_cell(s2['crawledData']['crawlers'])}; period: "
              f"{_cell(s2['crawledData']['collectionPeriod'])}", "",
              f"### 2.4 User data: {_cell(s2['userData'])}",
              f"### 2.5 Synthetic data: {_cell(s2['syntheticData'])}",
              f"### 2.6 Other sources: {_cell(s2['otherSources'])}", "",
              "## 3. Data processing aspects", "",
              "### 3.1 Measures to respect reservations of rights (TDM opt-outs)", "",
              s3["tdmOptOut"]["measure"], "",
              "| signal | standard | items reserving | excluded | licensed |",
              "| --- | --- | ---: | ---: | ---: |"]
    standards = {c["signal"]: c["standard"] for c in s3["tdmOptOut"]["signalsChecked"]}
    for row in s3["tdmOptOut"]["bySignal"]:
        lines.append(f"| {row['signal']} | {standards.get(row['signal'], '')} | "
                     f"{row['itemsReserving']} | {row['excluded']} | {row['licensed']} |")
    lines += ["", f"Items excluded for an opt-out alone: "
              f"{s3['tdmOptOut']['itemsExcludedForOptOut']}",
              f"Measures of third-party dataset suppliers: "
              f"{_cell(s3['tdmOptOut']['thirdPartySupplierMeasures'])}", "",
              f"### 3.2 Removal of illegal content: {_cell(s3['illegalContent'])}", "",
              "Fields left for the provider: " + ", ".join(summary["providerFields"]), ""]
    return "\n".join(lines)
