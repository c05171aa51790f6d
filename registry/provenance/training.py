"""Training-and-data-mining permissions: the CAWG vocabulary, written and (strictly) read.

We write `cawg.training-mining` (CAWG TDM v1.1) with an `entries` map keyed `cawg.<use>`, each
`{"use": "allowed"|"notAllowed"|"constrained", "constraint_info": "..."}`. We read it and the older
`c2pa.training-mining` (keys `c2pa.<use>`, removed in C2PA 2.0, never written).

c2pa-rs accepts any content in these assertions (`{"bogus.entry": {"use": "maybe"}}` signs and reads
back Trusted), so the reader validates every entry itself: keys outside the two vocabularies and our
own namespace (`com.clearhouse.`), unknown `use` values and malformed entries are reported as
problems and never counted. When several entries speak of one use, the most restrictive wins
(notAllowed > constrained > allowed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from registry.errors import InvalidInput
from registry.vocabulary import RESTRICTIVENESS as RESTRICTIVENESS  # the shared vocabulary
from registry.vocabulary import USES as USES
from registry.vocabulary import Permission as Permission
from registry.vocabulary import most_restrictive as most_restrictive_permission

CAWG_LABEL = "cawg.training-mining"
C2PA_LABEL = "c2pa.training-mining"  # C2PA 1.x; read only
LABELS = (CAWG_LABEL, C2PA_LABEL)
OUR_NAMESPACE = "com.clearhouse."


@dataclass(frozen=True)
class UsePermission:
    use: str  # one of USES
    permission: Permission
    constraint_info: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"use": self.permission.value, "constraint_info": self.constraint_info}


def most_restrictive(items: Iterable[UsePermission]) -> UsePermission | None:
    """The most restrictive of several permissions for one use (constraint texts joined)."""
    items = list(items)
    if not items:
        return None
    worst_permission = most_restrictive_permission(p.permission for p in items)
    worst = next(p for p in items if p.permission == worst_permission)
    infos = sorted({p.constraint_info for p in items
                    if p.permission == worst.permission and p.constraint_info})
    return UsePermission(worst.use, worst.permission, "; ".join(infos) or None)


def parse_permission(text: str) -> Permission:
    """`allowed`, `notAllowed` or `constrained` (case-insensitive; `not_allowed` accepted).

    Raises ValueError naming the accepted values.
    """
    norm = text.strip().replace("_", "").replace("-", "").lower()
    for p in Permission:
        if p.value.lower() == norm:
            return p
    raise ValueError(f"unknown permission {text!r} (use allowed, notAllowed or constrained)")


def cawg_assertion(permissions: Mapping[str, UsePermission]) -> dict[str, Any]:
    """The `cawg.training-mining` assertion for these permissions (uses in vocabulary order)."""
    entries: dict[str, Any] = {}
    for use in USES:
        perm = permissions.get(use)
        if perm is None:
            continue
        entry: dict[str, Any] = {"use": perm.permission.value}
        if perm.constraint_info:
            entry["constraint_info"] = perm.constraint_info
        entries[f"cawg.{use}"] = entry
    return {"label": CAWG_LABEL, "data": {"entries": entries}}


@dataclass(frozen=True)
class TrainingEntry:
    assertion: str
    key: str
    use: str | None  # one of USES, or None for our own com.clearhouse.* keys
    permission: Permission
    constraint_info: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"assertion": self.assertion, "key": self.key, "use": self.permission.value,
                "constraint_info": self.constraint_info}


@dataclass(frozen=True)
class TrainingMining:
    """What a manifest says about training, after validation."""

    entries: tuple[TrainingEntry, ...] = ()
    problems: tuple[str, ...] = ()
    assertions: tuple[str, ...] = ()
    uses: dict[str, UsePermission] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "assertions": list(self.assertions),
            "uses": {u: p.as_dict() for u, p in self.uses.items()},
            # A reader treats `constrained` as notAllowed unless a licence grants the use.
            "effective": {
                u: (Permission.notAllowed if p.permission == Permission.constrained
                    else p.permission).value
                for u, p in self.uses.items()
            },
            "entries": [e.as_dict() for e in self.entries],
            "problems": list(self.problems),
        }


def base_label(label: str) -> str:
    """`cawg.training-mining__1` or `c2pa.training-mining.v2` -> the base label."""
    label = label.split("__", 1)[0]
    head, _, tail = label.rpartition(".")
    if head and tail.startswith("v") and tail[1:].isdigit():
        return head
    return label


def read_training_mining(assertions: Iterable[Mapping[str, Any]]) -> TrainingMining | None:
    """Validate the training-mining assertions of one manifest; None when it has none."""
    entries: list[TrainingEntry] = []
    problems: list[str] = []
    seen: list[str] = []
    for assertion in assertions:
        label = str(assertion.get("label", ""))
        base = base_label(label)
        if base not in LABELS:
            continue
        seen.append(label)
        data = assertion.get("data")
        raw = data.get("entries") if isinstance(data, Mapping) else None
        if not isinstance(raw, Mapping):
            problems.append(f"{label}: no `entries` map")
            continue
        for key, value in raw.items():
            entry = _read_entry(label, str(key), value, problems)
            if entry is not None:
                entries.append(entry)
    if not seen:
        return None
    uses: dict[str, UsePermission] = {}
    for use in USES:
        perm = most_restrictive(
            UsePermission(use, e.permission, e.constraint_info) for e in entries if e.use == use
        )
        if perm is not None:
            uses[use] = perm
    return TrainingMining(tuple(entries), tuple(problems), tuple(seen), uses)


def _read_entry(
    label: str, key: str, value: object, problems: list[str]
) -> TrainingEntry | None:
    prefix, _, name = key.partition(".")
    if key.startswith(OUR_NAMESPACE):
        use: str | None = None
    elif prefix in ("cawg", "c2pa") and name in USES:
        use = name
    else:
        problems.append(
            f"{label}: unknown key {key!r} (not in the CAWG/C2PA vocabulary nor "
            f"{OUR_NAMESPACE}*): ignored"
        )
        return None
    if not isinstance(value, Mapping):
        problems.append(f"{label}: entry {key!r} is not an object: ignored")
        return None
    raw_use = value.get("use")
    try:
        permission = parse_permission(str(raw_use)) if isinstance(raw_use, str) else None
    except ValueError:
        permission = None
    if permission is None or (isinstance(raw_use, str) and raw_use != permission.value):
        problems.append(
            f"{label}: entry {key!r} has unknown use value {raw_use!r} (allowed, notAllowed, "
            "constrained): ignored"
        )
        return None
    info = value.get("constraint_info", value.get("constraints_info"))
    return TrainingEntry(label, key, use, permission, str(info) if info is not None else None)


def parse_training_specs(specs: Iterable[str]) -> dict[str, UsePermission]:
    """Training options as the CLI and the API take them: `notAllowed` (every use),
    `ai_training=notAllowed`, or `data_mining=constrained:ask licensing@studio` (the text after the
    colon is the constraint). Raises InvalidInput naming the bad option."""
    out: dict[str, UsePermission] = {}
    for spec in specs:
        use_part, sep, value = spec.partition("=")
        uses = [use_part.strip()] if sep else list(USES)
        if not sep:
            value = use_part
        for use in uses:
            if use not in USES:
                raise InvalidInput(f"training {spec!r}: unknown use {use!r} "
                                   f"(one of {', '.join(USES)})")
        word, _, info = value.partition(":")
        try:
            permission = parse_permission(word)
        except ValueError as exc:
            raise InvalidInput(f"training {spec!r}: {exc}") from exc
        if info and permission != Permission.constrained:
            raise InvalidInput(f"training {spec!r}: only `constrained` takes a constraint text")
        for use in uses:
            out[use] = UsePermission(use, permission, info.strip() or None)
    return out
