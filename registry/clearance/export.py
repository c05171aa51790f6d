"""The cleared subset: what an ML team may train on, written as a manifest, WebDataset shards or a
Hugging Face `imagefolder` copy.

`export_cleared(session, job, fmt=..., out=...)` takes the items of a finished job whose verdict is
`clear` (after legal review), reads each one again from the submitted dataset, checks that its bytes
still have the sha256 the clearance saw (an item changed since is refused, never exported), and
writes the subset to `out` atomically (a temporary sibling renamed into place: nothing half-written
is left behind on failure). Blocked, error and unreviewed (`review`) items are never included; the
result counts what was left out and why.

Formats:
- `manifest`: a CSV, JSONL or Parquet file (by `out`'s suffix) with the columns `key`, `path`,
  `sha256`, `verdict`, `id`, `caption`, `url`; `path` is the item's file, or `archive::member` for
  an item inside a tar/zip archive or WebDataset shard (the manifest reader reads both). Only
  this format may list other verdicts (`verdicts=("blocked",)`, say, for the list compliance
  keeps); training copies hold cleared items only.
- `webdataset`: a folder of uncompressed shards `cleared-000000.tar`, ... (`shard_items` samples
  each); sample `n` is `{n:08d}.<ext>` plus `{n:08d}.txt` (its caption, if any) and `{n:08d}.json`
  (key, sha256, verdict, id, caption, job).
- `hf`: a Hugging Face `imagefolder` folder: `train/{n:06d}-<name>` files and
  `train/metadata.jsonl` (`file_name`, `text` = the caption, `clearhouse_key`, `sha256`).

The subset's digest (`subset_digest`) uses the dataset digest method over the exported items, so a
certificate issued for the job verifies against any of the three exports.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tarfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clearance.datasets import (
    MEMBER_SEPARATOR,
    DatasetItem,
    dataset_digest,
    read_item,
)
from registry.clearance.models import VERDICTS, ClearanceItem, ClearanceJob, JobStatus, Verdict
from registry.clearance.reports import counts_by_verdict
from registry.clearance.runner import dataset_of
from registry.errors import Conflict, InvalidInput

EXPORT_FORMATS = ("manifest", "webdataset", "hf")
MANIFEST_TYPES = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
MANIFEST_COLUMNS = ("key", "path", "sha256", "verdict", "id", "caption", "url")
DEFAULT_SHARD_ITEMS = 1000
SUBSET_DIGEST_METHOD = ("sha256 over the sorted sha256 hex digests of the cleared items "
                        "(verdict clear after review), newline-joined")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportResult:
    job_id: int
    format: str
    path: str
    items: int
    digest: str  # the subset digest (what a certificate's subject names)
    verdicts: tuple[str, ...]
    left_out: dict[str, int]  # verdict -> items not exported
    files: list[str] = field(default_factory=list)  # written files, relative to `path`

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job_id, "format": self.format, "path": self.path,
                "items": self.items, "digest": {"sha256": self.digest},
                "verdicts": list(self.verdicts), "left_out": self.left_out,
                "files": self.files}


def cleared_items(
    session: Session, job_id: int, verdicts: Sequence[str] = (Verdict.clear.value,)
) -> list[ClearanceItem]:
    """The items of a job with one of `verdicts` (default: clear), in dataset order."""
    query = (select(ClearanceItem)
             .where(ClearanceItem.job_id == job_id, ClearanceItem.verdict.in_(list(verdicts)))
             .order_by(ClearanceItem.seq))
    return list(session.scalars(query))


def subset_digest(session: Session, job_id: int) -> tuple[str, int]:
    """(digest, item count) of the cleared subset: the digest method of the dataset digest over
    the sha256 of every item whose verdict is `clear`."""
    shas = [sha for (sha,) in session.execute(
        select(ClearanceItem.sha256).where(ClearanceItem.job_id == job_id,
                                           ClearanceItem.verdict == Verdict.clear.value))]
    missing = [s for s in shas if not s]
    if missing:  # a clear item was always read and hashed; anything else is a bug
        raise Conflict(f"clearance job {job_id} has {len(missing)} clear item(s) with no sha256")
    return dataset_digest([str(s) for s in shas]), len(shas)


def _check_verdicts(fmt: str, verdicts: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(verdicts))
    if not chosen:
        raise InvalidInput("choose at least one verdict to export")
    unknown = [v for v in chosen if v not in VERDICTS]
    if unknown:
        raise InvalidInput(f"verdict {unknown[0]!r} is not one of {', '.join(VERDICTS)}")
    if fmt != "manifest" and chosen != (Verdict.clear.value,):
        raise InvalidInput(
            f"a {fmt} export is a training copy and holds cleared items only; list other "
            "verdicts with --format manifest")
    return chosen


def _source_path(item: DatasetItem) -> str:
    loc = item.locator
    if loc.kind in ("tar", "zip"):
        return f"{loc.path}{MEMBER_SEPARATOR}{loc.member}"
    return loc.path


def _extension(key: str) -> str:
    suffix = PurePosixPath(key.split("#", 1)[0]).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ".bin"


@dataclass(frozen=True)
class _Row:
    row: ClearanceItem
    source: DatasetItem


def _rows(session: Session, job: ClearanceJob, verdicts: Sequence[str]) -> list[_Row]:
    items = cleared_items(session, job.id, verdicts)
    by_key = {item.key: item for item in dataset_of(job).items()}
    gone = [row.item_key for row in items if row.item_key not in by_key]
    if gone:
        raise Conflict(
            f"{len(gone)} item(s) of clearance job {job.id} are no longer in the dataset "
            f"(first: {gone[0]!r}); nothing was exported", detail={"missing": gone[:100]})
    return [_Row(row, by_key[row.item_key]) for row in items]


def _read_checked(entry: _Row, max_bytes: int) -> bytes:
    got = read_item(entry.source, max_bytes=max_bytes)
    if got.data is None or got.sha256 != entry.row.sha256:
        why = got.error or f"its sha256 is now {got.sha256}, the clearance saw {entry.row.sha256}"
        raise Conflict(
            f"item {entry.row.item_key!r} changed since the clearance ({why}); nothing was "
            "exported: clear the dataset again",
            detail={"key": entry.row.item_key, "expected": entry.row.sha256,
                    "found": got.sha256})
    return got.data


def _meta(row: ClearanceItem, job_id: int) -> dict[str, Any]:
    return {"key": row.item_key, "sha256": row.sha256, "verdict": row.verdict,
            "id": row.item_id, "caption": row.caption, "url": row.url, "job": job_id}


def _write_manifest(entries: Sequence[_Row], target: Path, kind: str, max_bytes: int) -> None:
    records = []
    for entry in entries:
        if entry.row.verdict == Verdict.clear.value:
            _read_checked(entry, max_bytes)  # never list a cleared item whose bytes changed
        records.append({"key": entry.row.item_key, "path": _source_path(entry.source),
                        "sha256": entry.row.sha256, "verdict": entry.row.verdict,
                        "id": entry.row.item_id, "caption": entry.row.caption,
                        "url": entry.row.url})
    if kind == "jsonl":
        with open(target, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif kind == "csv":
        with open(target, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(records)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(c, pa.string()) for c in MANIFEST_COLUMNS])
        pq.write_table(pa.Table.from_pylist(records, schema=schema), target)


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible shards
    tar.addfile(info, io.BytesIO(data))


def _write_webdataset(entries: Sequence[_Row], folder: Path, job_id: int, max_bytes: int,
                      shard_items: int) -> list[str]:
    folder.mkdir()
    files = []
    for start in range(0, max(len(entries), 1), shard_items):
        name = f"cleared-{start // shard_items:06d}.tar"
        files.append(name)
        with tarfile.open(folder / name, "w", format=tarfile.PAX_FORMAT) as tar:
            for n, entry in enumerate(entries[start:start + shard_items], start=start):
                data = _read_checked(entry, max_bytes)
                sample = f"{n:08d}"
                _tar_add(tar, sample + _extension(entry.row.item_key), data)
                if entry.row.caption:
                    _tar_add(tar, f"{sample}.txt", entry.row.caption.encode())
                _tar_add(tar, f"{sample}.json",
                         json.dumps(_meta(entry.row, job_id), ensure_ascii=False).encode())
    return files


def _write_hf(entries: Sequence[_Row], folder: Path, job_id: int, max_bytes: int) -> list[str]:
    split = folder / "train"
    split.mkdir(parents=True)
    lines = []
    files = []
    for n, entry in enumerate(entries):
        data = _read_checked(entry, max_bytes)
        stem = _SAFE_NAME.sub("_", PurePosixPath(entry.row.item_key.split("#", 1)[0]).stem)
        file_name = f"{n:06d}-{stem[:80]}{_extension(entry.row.item_key)}"
        (split / file_name).write_bytes(data)
        files.append(f"train/{file_name}")
        lines.append(json.dumps({"file_name": file_name, "text": entry.row.caption,
                                 "clearhouse_key": entry.row.item_key,
                                 "sha256": entry.row.sha256, "id": entry.row.item_id,
                                 "url": entry.row.url},
                                ensure_ascii=False))
    (split / "metadata.jsonl").write_text("".join(line + "\n" for line in lines),
                                          encoding="utf-8")
    files.append("train/metadata.jsonl")
    return files


def export_cleared(
    session: Session,
    job: ClearanceJob,
    *,
    fmt: str,
    out: Path,
    verdicts: Sequence[str] = (Verdict.clear.value,),
    max_bytes: int = 50 * 1024 * 1024,
    shard_items: int = DEFAULT_SHARD_ITEMS,
) -> ExportResult:
    """Write the items of `job` with one of `verdicts` (default: the cleared subset) to `out`.

    Raises InvalidInput (unknown format or verdict, a training copy of uncleared items, a manifest
    name without .csv/.jsonl/.parquet, `out` already exists), Conflict (the job is not finished,
    or an item changed or disappeared since the clearance). Nothing is left at `out` on failure.
    """
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    chosen = _check_verdicts(fmt, verdicts)
    if job.status != JobStatus.finished.value:
        raise Conflict(f"clearance job {job.id} is {job.status}, not finished")
    if shard_items < 1:
        raise InvalidInput("shard size must be at least 1 item")
    kind = MANIFEST_TYPES.get(out.suffix.lower())
    if fmt == "manifest" and kind is None:
        raise InvalidInput(f"{out}: a manifest export is named .jsonl, .csv or .parquet")
    if out.exists() or out.is_symlink():
        raise InvalidInput(f"{out}: already exists (choose a new name)")
    if not out.parent.is_dir():
        raise InvalidInput(f"{out.parent}: no such folder")
    entries = _rows(session, job, chosen)
    temp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        if fmt == "manifest":
            _write_manifest(entries, temp, kind or "jsonl", max_bytes)
            files = [out.name]
        elif fmt == "webdataset":
            files = _write_webdataset(entries, temp, job.id, max_bytes, shard_items)
        else:
            files = _write_hf(entries, temp, job.id, max_bytes)
        os.replace(temp, out)
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        elif temp.exists():
            temp.unlink()
    counts = counts_by_verdict(session, job.id)
    left_out = {v: n for v, n in counts.items() if v not in chosen and n}
    digest = dataset_digest([str(e.row.sha256) for e in entries if e.row.sha256])
    return ExportResult(job.id, fmt, str(out), len(entries), digest, chosen, left_out, files)
