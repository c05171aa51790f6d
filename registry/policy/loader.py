"""Read policy files: YAML with line numbers, validated all-or-nothing.

`check_policies(dir)` returns every problem found (file, line, field path, message);
`load_policies(dir)` returns a compiled PolicySet or raises InvalidPolicy naming the first problem
(all of them in `detail`). Nothing is half-loaded: a caller keeps its previous PolicySet until a
whole directory validates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from registry.errors import InvalidPolicy
from registry.policy.terms import LicenceTerms, PolicyFile

POLICY_SUFFIXES = (".yaml", ".yml")
# A licence is a page of YAML; anything this big is a mistake (or an attack on the parser).
MAX_POLICY_FILE_BYTES = 1024 * 1024

LinePath = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong in one policy file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PolicyVersion:
    """One policy file as loaded: its name (relative to the policies dir), sha256 and load time."""

    file: str
    sha256: str
    loaded_at: dt.datetime
    policy_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "loaded_at": self.loaded_at.isoformat(),
            "policy_ids": list(self.policy_ids),
        }


@dataclasses.dataclass(frozen=True)
class LoadedFile:
    """A validated file: its version, text, licences and the line of each YAML path."""

    version: PolicyVersion
    content: str
    terms: tuple[LicenceTerms, ...]
    lines: dict[LinePath, int]
    # Path prefix of each licence inside the file: () for a single-licence file.
    licence_paths: tuple[LinePath, ...]

    def line_of(self, path: LinePath) -> int | None:
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int, path: LinePath) -> None:
        super().__init__(key)
        self.key, self.line, self.path = key, line, path


def _map_lines(node: yaml.Node, path: LinePath, out: dict[LinePath, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1, (*path, key))
            seen.add(key)
            out[(*path, key)] = key_node.start_mark.line + 1
            _map_lines(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _map_lines(item, (*path, i), out)


def _field_name(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# Pydantic names union members and validators inside `loc`; they are not YAML paths.
_LOC_NOISE = {"int", "str", "date", "bool", "none", "list[str]", "tuple[str, ...]"}


def _clean_loc(loc: tuple[Any, ...], lines: dict[LinePath, int]) -> LinePath:
    path: list[str | int] = []
    for part in loc:
        noise = isinstance(part, str) and (part in _LOC_NOISE or "[" in part)
        if noise and (*path, part) not in lines:
            continue
        path.append(part)
    return tuple(path)


def parse_policy_text(text: str, file: str) -> tuple[LoadedFile | None, list[PolicyProblem]]:
    """Validate one policy file's text; returns (the file, []) or (None, its problems)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [PolicyProblem(file, line, "", f"invalid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [PolicyProblem(file, None, "", f"invalid YAML: {exc}")]
    if node is None:
        return None, [PolicyProblem(file, 1, "", "the file is empty")]
    lines: dict[LinePath, int] = {}
    try:
        _map_lines(node, (), lines)
    except _DuplicateKey as dup:
        return None, [
            PolicyProblem(file, dup.line, _field_name(dup.path), f"duplicate key {dup.key!r}")
        ]
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:  # pragma: no cover - compose already parsed it
        return None, [PolicyProblem(file, None, "", f"invalid YAML: {exc}")]
    if not isinstance(data, dict):
        return None, [PolicyProblem(file, 1, "", "a policy file must be a mapping of fields")]
    single = "licences" not in data
    try:
        parsed = PolicyFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        errors = exc.errors()
        for err in errors:
            loc = tuple(err["loc"])
            # Pydantic also reports a list as too short when one of its items failed: noise.
            if err["type"] == "too_short" and any(
                tuple(o["loc"])[: len(loc)] == loc and o is not err for o in errors
            ):
                continue
            if single and loc[:2] == ("licences", 0):
                loc = loc[2:]
            path = _clean_loc(loc, lines)
            line = None
            for end in range(len(path), -1, -1):
                line = lines.get(path[:end])
                if line is not None:
                    break
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown field"
            elif err["type"] == "enum":
                message = f"{message}; got {err.get('input')!r}"
            problems.append(PolicyProblem(file, line, _field_name(path), message))
        return None, _dedupe(problems)
    sha = hashlib.sha256(text.encode()).hexdigest()
    terms = tuple(parsed.terms())
    version = PolicyVersion(
        file=file,
        sha256=sha,
        loaded_at=dt.datetime.now(dt.UTC),
        policy_ids=tuple(t.id for t in terms),
    )
    paths: tuple[LinePath, ...] = (
        ((),) if single else tuple(("licences", i) for i in range(len(terms)))
    )
    return LoadedFile(version, text, terms, lines, paths), []


def _dedupe(problems: list[PolicyProblem]) -> list[PolicyProblem]:
    seen: set[PolicyProblem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def policy_files(directory: Path) -> list[Path]:
    """The policy files under `directory` (recursive; hidden files skipped), in name order."""
    if not directory.is_dir():
        raise InvalidPolicy(
            f"policies directory {str(directory)!r} does not exist",
            detail={"file": str(directory), "line": None, "field": ""},
        )
    return sorted(
        p
        for p in directory.rglob("*")
        if p.suffix.lower() in POLICY_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def read_policy_dir(directory: Path) -> tuple[list[LoadedFile], list[PolicyProblem]]:
    """Every file validated, plus the problems across files (duplicate policy ids)."""
    loaded: list[LoadedFile] = []
    problems: list[PolicyProblem] = []
    for path in policy_files(directory):
        name = path.relative_to(directory).as_posix()
        size = path.stat().st_size
        if size > MAX_POLICY_FILE_BYTES:
            problems.append(
                PolicyProblem(name, None, "", f"{size} bytes is over {MAX_POLICY_FILE_BYTES}")
            )
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            problems.append(PolicyProblem(name, None, "", "not UTF-8 text"))
            continue
        file, found = parse_policy_text(text, name)
        problems.extend(found)
        if file is not None:
            loaded.append(file)
    problems.extend(duplicate_id_problems(loaded))
    return loaded, problems


def duplicate_id_problems(files: Iterable[LoadedFile]) -> list[PolicyProblem]:
    first: dict[str, str] = {}
    problems = []
    for f in files:
        for terms, prefix in zip(f.terms, f.licence_paths, strict=True):
            path = (*prefix, "id")
            if terms.id in first:
                problems.append(
                    PolicyProblem(
                        f.version.file,
                        f.line_of(path),
                        _field_name(path),
                        f"duplicate policy id {terms.id!r} (first in {first[terms.id]})",
                    )
                )
            else:
                first[terms.id] = f.version.file
    return problems


def raise_for(problems: list[PolicyProblem]) -> None:
    if not problems:
        return
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise InvalidPolicy(
        f"{first}{more}",
        detail={
            "file": first.file,
            "line": first.line,
            "field": first.field,
            "errors": [p.as_dict() for p in problems],
        },
    )
