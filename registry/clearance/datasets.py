"""Datasets an ML team submits, read safely: folders, tar/zip, WebDataset shards, manifests.

`open_dataset(path)` finds what kind of dataset a path is and lists its items in a stable, sorted
order; `read_item(item)` returns one item's bytes (and sha256) for a worker process. Nothing is ever
extracted to disk: archive members are read in memory, under the byte limit.

Safety rules (every item that breaks one becomes an `error` item with the reason, never a crash):
- a folder is walked without following directory symlinks; a file symlink whose target resolves
  outside the dataset folder is refused ("symlink escapes the dataset");
- archive members with absolute names or `..` parts are refused (path traversal), and so are link
  and device members; nothing is read from outside the archive;
- a manifest's paths are resolved (symlinks included) and must stay inside the manifest's folder or
  one of the allowed roots; URLs are refused (no network);
- members are read only up to the byte limit; a larger item is an error, its sha256 still counts in
  the dataset digest.

Item keys are stable: the path relative to the folder, `member` inside an archive, `shard/member`
for WebDataset shards, and the path value (plus `#n` for repeats) for manifest rows.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import hashlib
import json
import os
import re
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from registry.errors import InvalidInput, MediaTooLarge

DatasetKind = Literal["folder", "archive", "webdataset", "manifest", "croissant"]
LocatorKind = Literal["file", "tar", "zip", "invalid"]

MANIFEST_SUFFIXES = (".csv", ".jsonl", ".parquet")
# Hugging Face `imagefolder` metadata: a `file_name` column (relative to the metadata file's
# folder) plus features; `text` or `caption` is read as the caption. These files are not items.
HF_METADATA_NAMES = ("metadata.jsonl", "metadata.csv", "metadata.parquet")
HF_CAPTION_COLUMNS = ("text", "caption")
# A manifest path naming a member inside an archive: `shards/train-000.tar::0001.jpg`.
MEMBER_SEPARATOR = "::"
# img2dataset / LAION manifests: the URL and caption columns (either spelling).
URL_COLUMNS = ("url", "URL")
CAPTION_COLUMNS = ("caption", "TEXT", "text")
MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif", ".mp4",
                  ".mov", ".webm", ".mkv")
CROISSANT_SUFFIXES = (".json", ".jsonld")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
# Sidecar members of a WebDataset sample (or of a folder image): metadata, not items.
SIDECAR_SUFFIXES = (".txt", ".caption", ".json", ".cls")
CAPTION_SUFFIXES = (".txt", ".caption")
_BRACE = re.compile(r"\{([0-9]+)\.\.([0-9]+)\}")
READ_CHUNK_BYTES = 1 << 20
# A `{a..b}` shard pattern names at most this many shards (expanded lazily, never as a list).
MAX_SHARDS = 100_000
# Archive bombs: an archive may hold at most this many members, unpack to at most this many
# bytes, and unpack to at most MAX_ARCHIVE_RATIO times its own size. Images are already
# compressed, so a real dataset archive sits near 1:1; a bomb of zeros is 1000:1.
MAX_ARCHIVE_MEMBERS = 200_000
MAX_ARCHIVE_UNPACKED_BYTES = 64 * 1024**3
MAX_ARCHIVE_RATIO = 50
# The longest file name component most file systems accept.
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class Locator:
    """Where a worker finds an item's bytes (picklable)."""

    kind: LocatorKind
    path: str  # the file, or the archive holding the member
    member: str | None = None
    offset: int = 0  # uncompressed tar: where the member's data starts
    size: int | None = None
    reason: str | None = None  # kind "invalid": why the item cannot be read
    occurrence: int = 1  # archives may hold one name twice: which of them (1 = first)


@dataclass(frozen=True)
class DatasetItem:
    key: str
    path: str  # shown in reports
    locator: Locator
    item_id: str | None = None
    caption: str | None = None
    url: str | None = None  # where the item came from, when the dataset says (manifest `url`)


@dataclass(frozen=True)
class ItemBytes:
    sha256: str | None
    size: int | None
    data: bytes | None  # None when the item could not be read (see error)
    error: str | None = None


@dataclass(frozen=True)
class Dataset:
    uri: str  # resolved path (or shard pattern)
    kind: DatasetKind
    options: dict[str, Any] = field(default_factory=dict)
    allowed_roots: tuple[str, ...] = ()

    def items(self) -> list[DatasetItem]:
        """Every item, sorted by key (duplicates of a key are impossible)."""
        if self.kind == "folder":
            found = list(_folder_items(Path(self.uri)))
        elif self.kind == "archive":
            found = list(_archive_items(Path(self.uri), prefix=""))
        elif self.kind == "webdataset":
            found = []
            for shard in _shard_paths(self.uri):
                found.extend(_with_shard_metadata(
                    _archive_items(shard, prefix=f"{shard.name}/"), shard))
        elif self.kind == "croissant":
            found = list(_croissant_items(Path(self.uri), self.allowed_roots))
        else:
            found = list(_manifest_items(Path(self.uri), self.options, self.allowed_roots))
            return found  # manifest order is the submitter's order; keys are already unique
        return sorted(found, key=lambda item: item.key)


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def check_allowed(path: Path, allowed_roots: Sequence[Path]) -> Path:
    """The resolved `path` if it lies under one of `allowed_roots`; InvalidInput otherwise."""
    resolved = path.resolve()
    for root in allowed_roots:
        if _is_within(resolved, root.resolve()):
            return resolved
    raise InvalidInput(
        f"{path}: outside the allowed dataset roots",
        detail={"path": str(path), "allowed_roots": [str(r) for r in allowed_roots]},
    )


def shard_count(pattern: str) -> int:
    """How many shards a `{a..b}` pattern names. Raises InvalidInput over MAX_SHARDS or for a
    reversed range."""
    match = _BRACE.search(pattern)
    if match is None:
        return 1
    first, last = match.group(1), match.group(2)
    if len(first) > 12 or len(last) > 12 or int(last) < int(first):
        raise InvalidInput(f"shard range {{{first}..{last}}} is not an ascending range of "
                           "shard numbers")
    count = int(last) - int(first) + 1
    if count > MAX_SHARDS:
        raise InvalidInput(f"shard range {{{first}..{last}}} names {count} shards; at most "
                           f"{MAX_SHARDS} are allowed")
    return count


def _shard_paths(pattern: str) -> Iterator[Path]:
    """The shards a pattern names, one at a time (a range of 10^5 shards is never a list)."""
    match = _BRACE.search(pattern)
    if match is None:
        root = Path(pattern)
        if root.is_dir():
            yield from sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(".tar"))
            return
        yield root
        return
    shard_count(pattern)
    first, last = match.group(1), match.group(2)
    width = len(first)
    for number in range(int(first), int(last) + 1):
        yield Path(pattern[: match.start()] + str(number).zfill(width) + pattern[match.end():])


def _check_name_lengths(text: str) -> None:
    for part in Path(text).parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise InvalidInput(f"a path component is longer than {MAX_NAME_BYTES} bytes: "
                               f"{part[:40]}...")


def open_dataset(
    path: Path | str,
    *,
    allowed_roots: Sequence[Path] | None = None,
    item_roots: Sequence[Path] = (),
    path_column: str = "path",
    id_column: str = "id",
    caption_column: str = "caption",
    images_dir: Path | None = None,
) -> Dataset:
    """Recognise the dataset at `path`.

    `images_dir` (a manifest of URLs, img2dataset or LAION style): the local folder holding the
    downloaded images; a row is matched to its file by the img2dataset key, by the URL recorded in
    the sample's `.json`, or by a `sha256` column. Rows with no local copy become error items
    ("missing: ..."); nothing is fetched.

    `allowed_roots`: when given (the API), the dataset itself must lie under one of them, and so
    must every path a manifest names; when None (the CLI), a manifest may name files under its
    own folder. `item_roots` (the CLI's `--allowed-root`): more folders a manifest's paths may
    lie in, without constraining where the dataset itself is.
    Raises InvalidInput for a missing path, a path outside the allowed roots, or an unknown kind.
    """
    text = str(path)
    if "\x00" in text:
        raise InvalidInput("a dataset path cannot contain a NUL character")
    _check_name_lengths(text)
    for extra in item_roots:
        if not Path(extra).is_dir():
            raise InvalidInput(f"{extra}: allowed root is not a folder")
    if images_dir is not None:
        if not Path(images_dir).is_dir():
            raise InvalidInput(f"{images_dir}: image folder not found")
        if allowed_roots is not None:
            check_allowed(Path(images_dir), allowed_roots)
    roots = tuple(dict.fromkeys(
        str(Path(r).resolve()) for r in [*(allowed_roots or ()), *item_roots,
                                         *([images_dir] if images_dir else [])]))
    if _BRACE.search(text):
        shard_count(text)
        for shard in _shard_paths(text):
            # Roots first: a path outside them is refused without saying whether it exists.
            if allowed_roots is not None:
                check_allowed(shard, allowed_roots)
            if not shard.is_file():
                raise InvalidInput(f"{shard}: shard not found")
        resolved_pattern = str(Path(text).parent.resolve() / Path(text).name)
        return Dataset(resolved_pattern, "webdataset", {}, roots)
    source = Path(text)
    if allowed_roots is not None:
        check_allowed(source, allowed_roots)
    try:
        found = source.exists()
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot open ({exc.strerror})") from exc
    if not found:
        raise InvalidInput(f"{source}: no such file or folder")
    resolved = source.resolve()
    name = resolved.name.lower()
    if resolved.is_dir():
        files = [p for p in resolved.iterdir() if p.is_file() and not p.name.startswith(".")]
        tars = {p.name[:-4] for p in files if p.name.lower().endswith(".tar")}
        # WebDataset shards, each optionally with its parquet metadata (`train-000.parquet`).
        if tars and all(p.name.lower().endswith(".tar") or (
                p.suffix.lower() == ".parquet" and p.stem in tars) for p in files):
            return Dataset(str(resolved), "webdataset", {}, roots)
        return Dataset(str(resolved), "folder", {}, roots)
    if name.endswith(MANIFEST_SUFFIXES):
        options: dict[str, Any] = {"path_column": path_column, "id_column": id_column,
                                   "caption_column": caption_column}
        if images_dir is not None:
            options["images_dir"] = str(Path(images_dir).resolve())
        return Dataset(str(resolved), "manifest", options, roots)
    if name.endswith(CROISSANT_SUFFIXES):
        _croissant_document(resolved)  # refuse anything that is not Croissant JSON-LD now
        return Dataset(str(resolved), "croissant", {}, roots)
    if name.endswith(TAR_SUFFIXES) or name.endswith(".zip"):
        return Dataset(str(resolved), "archive", {}, roots)
    raise InvalidInput(
        f"{source}: not a dataset (expected a folder, a .tar/.zip archive, WebDataset shards, a "
        f"{'/'.join(MANIFEST_SUFFIXES)} manifest or a Croissant JSON-LD file)"
    )


# --- folders ---------------------------------------------------------------------------------


def _hf_metadata(folder: Path, names: Sequence[str], root: Path) -> dict[str, dict[str, str]]:
    """Captions and ids from a Hugging Face `imagefolder` metadata file in `folder`, by item key
    (the `file_name` column is relative to the metadata file's folder)."""
    found: dict[str, dict[str, str]] = {}
    for name in HF_METADATA_NAMES:
        if name not in names:
            continue
        meta = folder / name
        for number, row in enumerate(_manifest_rows(meta), start=1):
            file_name = row.get("file_name")
            if not isinstance(file_name, str) or not file_name.strip():
                raise InvalidInput(f"{meta}: row {number} has no 'file_name' "
                                   f"(columns: {', '.join(map(str, row))})")
            key = (folder / file_name).relative_to(root).as_posix() if not Path(
                file_name).is_absolute() else file_name
            entry: dict[str, str] = {}
            for column in HF_CAPTION_COLUMNS:
                if row.get(column) not in (None, ""):
                    entry["caption"] = str(row[column])[:2000]
                    break
            if row.get("id") not in (None, ""):
                entry["item_id"] = str(row["id"])
            if row.get("url") not in (None, ""):
                entry["url"] = str(row["url"])
            found[key] = entry
    return found


def _folder_items(root: Path) -> Iterator[DatasetItem]:
    metadata: dict[str, dict[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        names = [n for n in filenames if not n.startswith(".")]
        metadata.update(_hf_metadata(here, names, root))
        stems = {n.rsplit(".", 1)[0] for n in names if not n.lower().endswith(SIDECAR_SUFFIXES)}
        for name in names:
            lower = name.lower()
            if lower.endswith(SIDECAR_SUFFIXES) and name.rsplit(".", 1)[0] in stems:
                continue  # a caption or metadata file next to its image
            if name in HF_METADATA_NAMES:
                continue  # Hugging Face imagefolder metadata, read above
            full = here / name
            key = full.relative_to(root).as_posix()
            meta = metadata.get(key, {})
            caption = _folder_caption(here, name) or meta.get("caption")
            item_id = meta.get("item_id")
            if full.is_symlink():
                target = full.resolve()
                if not _is_within(target, root):
                    yield _invalid(key, str(full), "symlink escapes the dataset folder")
                    continue
                if not target.is_file():
                    yield _invalid(key, str(full), "symlink does not point to a file")
                    continue
                yield DatasetItem(key, str(full), Locator("file", str(target)),
                                  item_id=item_id, caption=caption, url=meta.get("url"))
                continue
            if not full.is_file():
                yield _invalid(key, str(full), "not a regular file")
                continue
            yield DatasetItem(key, str(full), Locator("file", str(full)), item_id=item_id,
                              caption=caption, url=meta.get("url"))


def _folder_caption(folder: Path, name: str) -> str | None:
    stem = name.rsplit(".", 1)[0]
    for suffix in CAPTION_SUFFIXES:
        sidecar = folder / f"{stem}{suffix}"
        if sidecar.is_file() and not sidecar.is_symlink():
            try:
                return sidecar.read_text(errors="replace")[:2000].strip() or None
            except OSError:
                return None
    return None


def _invalid(key: str, path: str, reason: str) -> DatasetItem:
    return DatasetItem(key, path, Locator("invalid", path, reason=reason))


# --- archives (tar, zip, WebDataset shards) ----------------------------------------------------


def _unsafe_member_name(name: str) -> str | None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path in archive member (path traversal)"
    if ".." in pure.parts:
        return "'..' in archive member name (path traversal)"
    return None


def _sample_key(member: str) -> tuple[str, str]:
    """WebDataset convention: a sample's key is the member name up to the first dot of its
    basename; the rest is the extension (`a/b/0001.seg.png` -> (`a/b/0001`, `seg.png`))."""
    folder, _, base = member.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


class _ArchiveBudget:
    """Counts an archive's members and unpacked bytes as they are listed; raises InvalidInput
    (a bomb) as soon as a limit is passed, so a bomb is never unpacked to the end."""

    def __init__(self, path: Path) -> None:
        self.label = str(path)
        packed = path.stat().st_size
        # Small archives of small files (a few captions) are fine whatever their ratio.
        self.max_bytes = min(MAX_ARCHIVE_UNPACKED_BYTES,
                             max(packed * MAX_ARCHIVE_RATIO, 16 * 1024 * 1024))
        self.members = 0
        self.unpacked = 0

    def add(self, size: int) -> None:
        self.members += 1
        self.unpacked += max(size, 0)
        if self.members > MAX_ARCHIVE_MEMBERS:
            raise InvalidInput(f"{self.label}: more than {MAX_ARCHIVE_MEMBERS} members "
                               "(refused as a possible archive bomb)")
        if self.unpacked > self.max_bytes:
            raise InvalidInput(
                f"{self.label}: unpacks to more than {self.max_bytes} bytes (over "
                f"{MAX_ARCHIVE_RATIO}x its size or {MAX_ARCHIVE_UNPACKED_BYTES} bytes; refused "
                "as a possible archive bomb)",
                detail={"limit_bytes": self.max_bytes, "ratio_limit": MAX_ARCHIVE_RATIO})


def _occurrence_keys(names: Sequence[str]) -> list[tuple[str, int]]:
    """(key, occurrence) per name: a name seen again gets `name#2`, `name#3`... (tar and zip
    allow one name twice; each copy is its own item)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append((name if count == 1 else f"{name}#{count}", count))
    return out


def check_archive(path: Path) -> None:
    """Refuse an archive bomb before a job is queued (InvalidInput with the reason)."""
    if path.name.lower().endswith(".zip"):
        _zip_infos(path)
    else:
        with _open_tar(path) as archive:
            _tar_members(archive, path)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError) as exc:
        raise InvalidInput(f"{path}: not a readable tar archive ({exc})") from exc


def _tar_members(archive: tarfile.TarFile, path: Path) -> list[tarfile.TarInfo]:
    budget = _ArchiveBudget(path)
    members = []
    try:
        for member in archive:
            budget.add(member.size if member.isfile() else 0)
            members.append(member)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidInput(f"{path}: not a readable tar archive ({exc})") from exc
    return members


def _zip_infos(path: Path) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{path}: not a readable zip archive ({exc})") from exc
    budget = _ArchiveBudget(path)
    for info in infos:
        budget.add(0 if info.is_dir() else info.file_size)
    return infos


def _archive_items(path: Path, *, prefix: str) -> Iterator[DatasetItem]:
    label = str(path)
    if path.name.lower().endswith(".zip"):
        yield from _zip_items(path, prefix)
        return
    archive = _open_tar(path)
    compressed = not path.name.lower().endswith(".tar")
    with archive:
        members = _tar_members(archive, path)
        keys = _occurrence_keys([m.name for m in members])
        captions: dict[str, str] = {}
        for member in members:
            sample, ext = _sample_key(member.name)
            if member.isfile() and f".{ext}" in CAPTION_SUFFIXES and member.size <= 64_000:
                fh = archive.extractfile(member)
                if fh is not None:
                    captions[sample] = fh.read().decode("utf-8", "replace").strip()
        for member, (name_key, occurrence) in zip(members, keys, strict=True):
            key = prefix + name_key
            shown = f"{label}::{name_key}"
            if member.isdir():
                continue
            _, ext = _sample_key(member.name)
            if f".{ext}" in SIDECAR_SUFFIXES:
                continue
            reason = _unsafe_member_name(member.name)
            if reason is None and (member.issym() or member.islnk()):
                reason = "link member in archive is not allowed"
            elif reason is None and not member.isfile():
                reason = "special member (device or fifo) in archive is not allowed"
            if reason is not None:
                yield _invalid(key, shown, reason)
                continue
            sample, _ = _sample_key(member.name)
            locator = Locator(
                "tar",
                str(path),
                member=member.name,
                offset=-1 if compressed else member.offset_data,
                size=member.size,
                occurrence=occurrence,
            )
            yield DatasetItem(key, shown, locator, item_id=prefix + sample,
                              caption=captions.get(sample))


def _zip_items(path: Path, prefix: str) -> Iterator[DatasetItem]:
    label = str(path)
    _zip_infos(path)  # the bomb limits, before anything is read
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{label}: not a readable zip archive ({exc})") from exc
    with archive:
        infos = archive.infolist()
        keys = dict(zip(map(id, infos), _occurrence_keys([i.filename for i in infos]),
                        strict=True))
        captions: dict[str, str] = {}
        for info in infos:
            sample, ext = _sample_key(info.filename)
            if f".{ext}" in CAPTION_SUFFIXES and info.file_size <= 64_000 and not info.is_dir():
                with contextlib.suppress(zipfile.BadZipFile, OSError, NotImplementedError,
                                         RuntimeError):
                    captions[sample] = archive.read(info).decode("utf-8", "replace").strip()
        for info in infos:
            if info.is_dir():
                continue
            sample, ext = _sample_key(info.filename)
            if f".{ext}" in SIDECAR_SUFFIXES:
                continue
            name_key, occurrence = keys[id(info)]
            key = prefix + name_key
            shown = f"{label}::{name_key}"
            reason = _unsafe_member_name(info.filename)
            mode = (info.external_attr >> 16) & 0o170000
            if reason is None and mode == 0o120000:
                reason = "link member in archive is not allowed"
            if reason is not None:
                yield _invalid(key, shown, reason)
                continue
            locator = Locator("zip", str(path), member=info.filename, size=info.file_size,
                              occurrence=occurrence)
            yield DatasetItem(key, shown, locator, item_id=prefix + sample,
                              caption=captions.get(sample))


# --- manifests -----------------------------------------------------------------------------------


def _manifest_rows(path: Path) -> Iterator[dict[str, Any]]:
    name = path.name.lower()
    try:
        if name.endswith(".csv"):
            with open(path, newline="", encoding="utf-8") as fh:
                yield from csv.DictReader(fh)
        elif name.endswith(".jsonl"):
            with open(path, encoding="utf-8") as fh:
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InvalidInput(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
                    if not isinstance(row, dict):
                        raise InvalidInput(f"{path}:{number}: each line must be a JSON object")
                    yield row
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            yield from table.to_pylist()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{path}: cannot read manifest ({exc})") from exc
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/ArrowIOError family
        if type(exc).__module__.startswith("pyarrow"):
            raise InvalidInput(f"{path}: cannot read Parquet manifest ({exc})") from exc
        raise


def _manifest_items(
    manifest: Path, options: dict[str, Any], allowed_roots: Sequence[str]
) -> Iterator[DatasetItem]:
    path_column = str(options.get("path_column") or "path")
    id_column = str(options.get("id_column") or "id")
    caption_column = str(options.get("caption_column") or "caption")
    roots = [manifest.parent.resolve(), *(Path(r) for r in allowed_roots)]
    images = options.get("images_dir")
    cache = _ImageCache(Path(images)) if images else None
    seen: dict[str, int] = {}
    for number, row in enumerate(_manifest_rows(manifest), start=1):
        if cache is not None and path_column not in row:
            item = _cached_row(row, number, cache, id_column, caption_column)
            count = seen.get(item.key, 0) + 1
            seen[item.key] = count
            yield item if count == 1 else replace(item, key=f"{item.key}#{count}")
            continue
        if path_column not in row:
            raise InvalidInput(
                f"{manifest}: row {number} has no {path_column!r} column "
                f"(columns: {', '.join(map(str, row))})"
            )
        value = row.get(path_column)
        raw = "" if value is None else str(value)
        count = seen.get(raw, 0) + 1
        seen[raw] = count
        key = raw if count == 1 else f"{raw}#{count}"
        item_id = row.get(id_column)
        caption = row.get(caption_column)
        url = next((row[c] for c in URL_COLUMNS if row.get(c) not in (None, "")), None)
        is_url = bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", raw))
        extra = {
            "item_id": None if item_id is None else str(item_id),
            "caption": None if caption is None else str(caption),
            "url": raw if is_url else (None if url in (None, "") else str(url)),
        }
        if not raw.strip():
            yield DatasetItem(key, raw, Locator("invalid", raw, reason="empty path"), **extra)
            continue
        if is_url:
            reason = "remote URLs are not read (no network); give a local path"
            yield DatasetItem(key, raw, Locator("invalid", raw, reason=reason), **extra)
            continue
        file_part, _, member = raw.partition(MEMBER_SEPARATOR)
        candidate = Path(file_part)
        if not candidate.is_absolute():
            candidate = manifest.parent / candidate
        resolved = candidate.resolve()
        if not any(_is_within(resolved, root) for root in roots):
            reason = "path is outside the manifest's folder and the allowed roots"
            yield DatasetItem(key, raw, Locator("invalid", raw, reason=reason), **extra)
            continue
        if member:
            yield DatasetItem(key, raw, _member_locator(resolved, member), **extra)
            continue
        yield DatasetItem(key, raw, Locator("file", str(resolved)), **extra)


class _ImageCache:
    """The local folder of an img2dataset download (or any folder of images), indexed on first
    use: by file stem (the img2dataset key), by the URL in each sample's `.json` sidecar, and,
    only if a row asks, by sha256 of every file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_key: dict[str, Path] | None = None
        self._by_url: dict[str, Path] = {}
        self._by_sha: dict[str, Path] | None = None

    def _index(self) -> dict[str, Path]:
        if self._by_key is None:
            self._by_key = {}
            for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                here = Path(dirpath)
                for name in sorted(filenames):
                    full = here / name
                    if name.lower().endswith(MEDIA_SUFFIXES) and not full.is_symlink():
                        self._by_key.setdefault(full.stem, full)
                for name in sorted(filenames):
                    if name.lower().endswith(".json"):
                        self._read_sidecar(here / name)
        return self._by_key

    def _read_sidecar(self, sidecar: Path) -> None:
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return
        url = data.get("url") if isinstance(data, dict) else None
        image = (self._by_key or {}).get(sidecar.stem)
        if isinstance(url, str) and image is not None and image.parent == sidecar.parent:
            self._by_url.setdefault(url, image)

    def by_key(self, key: str) -> Path | None:
        return self._index().get(key)

    def by_url(self, url: str) -> Path | None:
        self._index()
        return self._by_url.get(url)

    def by_sha(self, sha256: str) -> Path | None:
        if self._by_sha is None:
            self._by_sha = {}
            for path in self._index().values():
                got = read_item(DatasetItem("", str(path), Locator("file", str(path))),
                                max_bytes=1 << 62)
                if got.sha256:
                    self._by_sha.setdefault(got.sha256, path)
        return self._by_sha.get(sha256.lower())


def _cached_row(row: dict[str, Any], number: int, cache: _ImageCache, id_column: str,
                caption_column: str) -> DatasetItem:
    """A manifest row naming a URL (no path): its local copy in the image cache, or an error
    item saying it is missing (never fetched)."""
    url = next((str(row[c]) for c in URL_COLUMNS if row.get(c) not in (None, "")), None)
    caption = next((row[c] for c in (caption_column, *CAPTION_COLUMNS)
                    if row.get(c) not in (None, "")), None)
    key_value = row.get("key")
    item_id = row.get(id_column, key_value)
    key = url or (str(key_value) if key_value is not None else f"row {number}")
    found = None
    if key_value not in (None, ""):
        found = cache.by_key(str(key_value))
    if found is None and url:
        found = cache.by_url(url)
    sha = row.get("sha256")
    if found is None and isinstance(sha, str) and len(sha) == 64:
        found = cache.by_sha(sha)
    extra = {"item_id": None if item_id is None else str(item_id),
             "caption": None if caption is None else str(caption), "url": url}
    if found is None:
        reason = f"missing: no local copy of {url or key} in the image folder (not fetched)"
        return DatasetItem(key, url or key, Locator("invalid", url or key, reason=reason),
                           **extra)
    return DatasetItem(key, str(found), Locator("file", str(found.resolve())), **extra)


def _member_locator(archive: Path, member: str) -> Locator:
    """A manifest row naming `archive::member` (the form `clearances export --format manifest`
    writes for items of archives and WebDataset shards)."""
    reason = _unsafe_member_name(member)
    if reason is not None:
        return Locator("invalid", f"{archive}{MEMBER_SEPARATOR}{member}", reason=reason)
    if archive.name.lower().endswith(".zip"):
        return Locator("zip", str(archive), member=member)
    if archive.name.lower().endswith(TAR_SUFFIXES):
        return Locator("tar", str(archive), member=member, offset=-1)
    return Locator("invalid", str(archive), reason="'::' names a member of a non-archive file")


def _with_shard_metadata(items: Iterator[DatasetItem], shard: Path) -> Iterator[DatasetItem]:
    """WebDataset shards with per-shard parquet metadata (`train-000.parquet` next to
    `train-000.tar`, img2dataset's layout): captions and URLs by sample key."""
    meta_file = shard.with_suffix(".parquet")
    if not meta_file.is_file():
        yield from items
        return
    by_key: dict[str, dict[str, Any]] = {}
    for row in _manifest_rows(meta_file):
        if row.get("key") not in (None, ""):
            by_key[str(row["key"])] = row
    for item in items:
        sample = (item.item_id or "").removeprefix(f"{shard.name}/")
        meta = by_key.get(sample)
        if meta is None:
            yield item
            continue
        caption = item.caption or next((str(meta[c]) for c in CAPTION_COLUMNS
                                        if meta.get(c) not in (None, "")), None)
        url = next((str(meta[c]) for c in URL_COLUMNS if meta.get(c) not in (None, "")), None)
        yield replace(item, caption=caption, url=url)


# --- Croissant ---------------------------------------------------------------------------------


def _croissant_document(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not a readable JSON-LD file ({exc})") from exc
    context = json.dumps(data.get("@context", "")) if isinstance(data, dict) else ""
    if not isinstance(data, dict) or "croissant" not in context.lower() or not isinstance(
            data.get("distribution"), list):
        raise InvalidInput(f"{path}: not a Croissant dataset description (JSON-LD with the "
                           "mlcommons croissant @context and a distribution list)")
    return data


def _types(entry: dict[str, Any]) -> set[str]:
    kinds = entry.get("@type")
    values = kinds if isinstance(kinds, list) else [kinds]
    return {str(v).rsplit(":", 1)[-1] for v in values if v}


def _ref(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [str(v.get("@id")) if isinstance(v, dict) else str(v) for v in values if v]


def _croissant_items(path: Path, allowed_roots: Sequence[str]) -> Iterator[DatasetItem]:
    """Items of a Croissant JSON-LD description: each FileObject that is a local image or video,
    each member of a local archive FileObject matched by a FileSet's `includes`, and each local
    file a FileSet without an archive names. `contentUrl`s must resolve inside the Croissant
    file's folder (or the allowed roots); remote URLs are error items (no network)."""
    data = _croissant_document(path)
    base = path.parent.resolve()
    roots = [base, *(Path(r) for r in allowed_roots)]
    objects: dict[str, dict[str, Any]] = {}
    sets = []
    for entry in data["distribution"]:
        if not isinstance(entry, dict):
            continue
        if "FileObject" in _types(entry):
            objects[str(entry.get("@id") or entry.get("name"))] = entry
        elif "FileSet" in _types(entry):
            sets.append(entry)
    containers = {ref for fs in sets for ref in _ref(fs.get("containedIn"))}

    def local(entry: dict[str, Any]) -> tuple[Path | None, str | None]:
        url = str(entry.get("contentUrl") or "")
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
            return None, "remote URLs are not read (no network); give a local path"
        candidate = (base / url).resolve()
        if not url or not any(_is_within(candidate, root) for root in roots):
            return None, "contentUrl is outside the Croissant file's folder and the allowed roots"
        if not candidate.exists():
            return None, "contentUrl names no file"
        return candidate, None

    for object_id, entry in objects.items():
        if object_id in containers:
            continue
        url = str(entry.get("contentUrl") or object_id)
        fmt = str(entry.get("encodingFormat") or "")
        media = fmt.startswith(("image/", "video/")) or url.lower().endswith(MEDIA_SUFFIXES)
        if not media:
            continue  # metadata (CSV, JSON, Parquet) describing records, not an item
        found, reason = local(entry)
        if found is None:
            yield DatasetItem(url, url, Locator("invalid", url, reason=reason))
        else:
            yield DatasetItem(url, str(found), Locator("file", str(found)))
    for fileset in sets:
        patterns = [str(p) for p in (fileset.get("includes") or ["*"])] if not isinstance(
            fileset.get("includes"), str) else [str(fileset["includes"])]
        parents = _ref(fileset.get("containedIn"))
        for parent_id in parents:
            parent = objects.get(parent_id)
            if parent is None:
                continue
            found, reason = local(parent)
            label = str(parent.get("contentUrl") or parent_id)
            if found is None:
                yield DatasetItem(label, label, Locator("invalid", label, reason=reason))
                continue
            if found.is_dir():
                for file in sorted(found.rglob("*")):
                    rel = file.relative_to(found).as_posix()
                    if file.is_file() and any(fnmatch.fnmatch(rel, p) for p in patterns):
                        key = f"{label.rstrip('/')}/{rel}"
                        yield DatasetItem(key, str(file), Locator("file", str(file.resolve())))
                continue
            for item in _archive_items(found, prefix=f"{label}/"):
                member = item.key.removeprefix(f"{label}/")
                if any(fnmatch.fnmatch(member, p) for p in patterns):
                    yield item
        if not parents:
            for pattern in patterns:
                for file in sorted(base.glob(pattern)):
                    resolved = file.resolve()
                    if not file.is_file() or not any(_is_within(resolved, r) for r in roots):
                        continue
                    rel = file.relative_to(base).as_posix()
                    yield DatasetItem(rel, str(file), Locator("file", str(resolved)))


# --- reading one item -----------------------------------------------------------------------


def _hash_stream(read: Any, limit: int) -> ItemBytes:
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    while block := read(READ_CHUNK_BYTES):
        digest.update(block)
        size += len(block)
        if size <= limit:
            chunks.append(block)
        else:
            chunks.clear()
    if size > limit:
        error = MediaTooLarge(f"{size} bytes is over the limit of {limit} bytes").message
        return ItemBytes(digest.hexdigest(), size, None, error)
    return ItemBytes(digest.hexdigest(), size, b"".join(chunks))


# Compressed tars kept open per process, keyed by (path, mtime, size): a rewritten file reopens.
# With each, its members by name (an archive may hold one name twice: see Locator.occurrence).
_OPEN_TARS: dict[tuple[str, int, int],
                 tuple[tarfile.TarFile, dict[str, list[tarfile.TarInfo]]]] = {}


def _cached_tar(path: str) -> tuple[tarfile.TarFile, dict[str, list[tarfile.TarInfo]]]:
    """A compressed tar kept open in this process (members indexed once)."""
    stat = os.stat(path)
    cache_key = (path, stat.st_mtime_ns, stat.st_size)
    opened = _OPEN_TARS.get(cache_key)
    if opened is None:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - cached for the process
        index: dict[str, list[tarfile.TarInfo]] = {}
        for info in tar.getmembers():
            index.setdefault(info.name, []).append(info)
        opened = _OPEN_TARS[cache_key] = (tar, index)
    return opened


def read_item(item: DatasetItem, *, max_bytes: int) -> ItemBytes:
    """The item's bytes and sha256. Never raises: a failure is an ItemBytes with `error` set.

    Items over `max_bytes` are hashed (the digest covers them) but not returned.
    """
    loc = item.locator
    try:
        if loc.kind == "invalid":
            return ItemBytes(None, None, None, loc.reason or "unreadable item")
        if loc.kind == "file":
            with open(loc.path, "rb") as fh:
                return _hash_stream(fh.read, max_bytes)
        if loc.kind == "zip":
            with zipfile.ZipFile(loc.path) as zipped:
                named = [i for i in zipped.infolist() if i.filename == loc.member]
                if len(named) < loc.occurrence:
                    return ItemBytes(None, None, None, "archive member is missing")
                with zipped.open(named[loc.occurrence - 1]) as packed:
                    return _hash_stream(packed.read, max_bytes)
        if loc.offset >= 0:  # uncompressed tar: seek straight to the member's data
            with open(loc.path, "rb") as fh:
                fh.seek(loc.offset)
                remaining = loc.size or 0

                def bounded(n: int) -> bytes:
                    nonlocal remaining
                    block = fh.read(min(n, remaining))
                    remaining -= len(block)
                    return block

                return _hash_stream(bounded, max_bytes)
        tar, index = _cached_tar(loc.path)
        members = index.get(loc.member or "", [])
        if len(members) < loc.occurrence:
            return ItemBytes(None, None, None, "archive member is missing")
        info = members[loc.occurrence - 1]
        member = tar.extractfile(info) if info.isfile() else None
        if member is None:
            return ItemBytes(None, None, None, "archive member is not a regular file")
        with member:
            return _hash_stream(member.read, max_bytes)
    except (OSError, KeyError, tarfile.TarError, zipfile.BadZipFile, RuntimeError,
            NotImplementedError, EOFError) as exc:
        return ItemBytes(None, None, None, f"cannot read item ({exc})")


def read_head(item: DatasetItem, size: int = 64) -> bytes:
    """The first `size` bytes of an item (b"" when it cannot be read): enough to sniff its
    format without reading it whole."""
    loc = item.locator
    try:
        if loc.kind == "file":
            with open(loc.path, "rb") as fh:
                return fh.read(size)
        if loc.kind == "zip":
            with zipfile.ZipFile(loc.path) as zipped, zipped.open(loc.member or "") as packed:
                return packed.read(size)
        if loc.kind == "tar" and loc.offset >= 0:
            with open(loc.path, "rb") as fh:
                fh.seek(loc.offset)
                return fh.read(min(size, loc.size or 0))
        if loc.kind == "tar":
            member = _cached_tar(loc.path)[0].extractfile(loc.member or "")
            return member.read(size) if member is not None else b""
    except (OSError, KeyError, tarfile.TarError, zipfile.BadZipFile, RuntimeError,
            NotImplementedError, EOFError):
        return b""
    return b""


def item_digest(sha256: str | None, key: str) -> str:
    """What an item contributes to the dataset digest: its content sha256, or for an item whose
    bytes could not be read at all, the sha256 of `unreadable:<key>` (so it still counts)."""
    if sha256:
        return sha256
    return hashlib.sha256(f"unreadable:{key}".encode()).hexdigest()


def dataset_digest(item_digests: Sequence[str]) -> str:
    """sha256 over the sorted per-item digests, one hex digest per line (`\\n`-joined)."""
    return hashlib.sha256("\n".join(sorted(item_digests)).encode()).hexdigest()


def dataset_item_digests(dataset: Dataset, *, max_bytes: int) -> list[tuple[str, str]]:
    """(key, item digest) of every item, read again (certificate verification)."""
    pairs = []
    for item in dataset.items():
        got = read_item(item, max_bytes=max_bytes)
        pairs.append((item.key, item_digest(got.sha256, item.key)))
    return pairs


def compute_dataset_digest(dataset: Dataset, *, max_bytes: int) -> str:
    """Read every item again and recompute the dataset digest (certificate verification)."""
    return dataset_digest([d for _, d in dataset_item_digests(dataset, max_bytes=max_bytes)])
