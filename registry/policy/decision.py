"""Decisions: may this asset be used this way by this licensee, and why.

Policies are compiled once into a PolicySet (licences grouped by licensor, scopes as frozensets).
`PolicySet.decide` evaluates one asset and returns a Decision whose explanation lists every licence
of the asset's rightsholder and every grant for the use: whether it applied and why not.

Rules, in order (documented in README.md, "Licence policies"):
1. Within one licence, among the grants that apply to the asset, only the most specific scope
   counts (asset > tag > franchise > all); the others are overridden ("more_specific_scope").
2. No applicable grant left: denied, rights reserved ("rights_reserved").
3. Any applicable `notAllowed`: denied ("notAllowed_beats_allowed" when something else allowed it).
4. Any applicable `constrained` whose conditions are not all machine-checked and met: review
   ("constrained_needs_review").
5. Otherwise allowed (a constrained grant whose conditions are all met counts as allowed).

`decide_many` gives the same answers for a batch, memoising on what a decision can depend on
(rightsholder, franchise, tags; id, sha256 and size only where a policy names them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from registry.errors import InvalidInput
from registry.policy.loader import LoadedFile, PolicyVersion
from registry.policy.terms import Conditions, LicenceTerms, Permission, Scope, Use

if TYPE_CHECKING:
    from registry.catalog import Asset


class Outcome(enum.StrEnum):
    allowed = "allowed"
    denied = "denied"
    review = "review"


class Rule(enum.StrEnum):
    """Which rule settled a decision."""

    rights_reserved = "rights_reserved"
    not_allowed = "not_allowed"
    notAllowed_beats_allowed = "notAllowed_beats_allowed"
    constrained_needs_review = "constrained_needs_review"
    constrained_conditions_met = "constrained_conditions_met"
    more_specific_scope = "more_specific_scope"
    allowed = "allowed"


class Level(enum.IntEnum):
    """How specifically a scope picked an asset; higher wins inside one licence."""

    all = 0
    franchise = 1
    tag = 2
    asset = 3


@dataclasses.dataclass(frozen=True)
class AssetFacts:
    """What a decision may depend on about an asset (no database needed to decide)."""

    asset_id: int
    sha256: str
    rightsholder: str
    franchise: str | None
    tags: tuple[str, ...]
    width: int | None = None
    height: int | None = None

    @classmethod
    def from_asset(cls, asset: Asset) -> AssetFacts:
        return cls(
            asset_id=asset.id,
            sha256=asset.sha256,
            rightsholder=asset.rightsholder.name,
            franchise=asset.franchise.name if asset.franchise is not None else None,
            tags=tuple(asset.tags),
            width=asset.width,
            height=asset.height,
        )


@dataclasses.dataclass(frozen=True)
class Clause:
    """One licence or grant considered for a decision, and whether it applied."""

    policy_id: str
    file: str
    grant: str | None  # "grants[1] ai_training: allowed"; None: the licence has none for the use
    applied: bool
    reason: str
    permission: str | None = None
    level: str | None = None  # scope level that matched: asset, tag, franchise, all
    line: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.policy_id}#{self.grant.split(' ', 1)[0]}" if self.grant else self.policy_id

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "file": self.file,
            "line": self.line,
            "grant": self.grant,
            "permission": self.permission,
            "applied": self.applied,
            "level": self.level,
            "reason": self.reason,
        }


@dataclasses.dataclass(frozen=True)
class Decision:
    outcome: Outcome
    use: Use
    licensee: str
    asset_id: int
    explanation: tuple[Clause, ...]
    decided_by: str | None  # "policy-id#grants[i]"; None when rights are reserved
    rule: Rule
    policy_versions: tuple[PolicyVersion, ...]
    sha256: str = ""
    on: dt.date | None = None
    decided_by_version: PolicyVersion | None = None

    @property
    def summary(self) -> str:
        by = f" by {self.decided_by}" if self.decided_by else ""
        return (
            f"asset {self.asset_id}: {self.use} for {self.licensee} on {self.on} -> "
            f"{self.outcome}{by} ({self.rule})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "asset_id": self.asset_id,
            "sha256": self.sha256,
            "use": str(self.use),
            "licensee": self.licensee,
            "on": self.on.isoformat() if self.on else None,
            "outcome": str(self.outcome),
            "rule": str(self.rule),
            "decided_by": self.decided_by,
            "decided_by_version": (
                self.decided_by_version.as_dict() if self.decided_by_version else None
            ),
            "summary": self.summary,
            "explanation": [c.as_dict() for c in self.explanation],
            "policy_versions": [v.as_dict() for v in self.policy_versions],
        }


# --- compiled policies ---------------------------------------------------------------------------


def _fold(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.casefold() for v in values)


@dataclasses.dataclass(frozen=True)
class _Selector:
    franchises: frozenset[str]
    asset_ids: frozenset[int]
    shas: frozenset[str]
    tags: frozenset[str]

    @classmethod
    def of(cls, franchises: Iterable[str], assets: Iterable[int | str],
           tags: Iterable[str]) -> _Selector:
        keys = list(assets)
        return cls(
            _fold(franchises),
            frozenset(k for k in keys if isinstance(k, int)),
            frozenset(k for k in keys if isinstance(k, str)),
            _fold(tags),
        )

    @property
    def empty(self) -> bool:
        return not (self.franchises or self.asset_ids or self.shas or self.tags)

    def best(self, a: AssetFacts, tags: frozenset[str],
             franchise: str | None) -> tuple[Level, str] | None:
        """The most specific selector that picks `a`, or None."""
        if a.asset_id in self.asset_ids:
            return Level.asset, f"asset {a.asset_id}"
        if a.sha256 in self.shas:
            return Level.asset, f"asset {a.sha256[:12]}"
        hit = self.tags & tags
        if hit:
            return Level.tag, f"tag {sorted(hit)[0]!r}"
        if franchise is not None and franchise in self.franchises:
            return Level.franchise, f"franchise {a.franchise!r}"
        return None


@dataclasses.dataclass(frozen=True)
class _Scope:
    include: _Selector
    exclude: _Selector

    @classmethod
    def of(cls, scope: Scope) -> _Scope:
        ex = scope.exclude
        return cls(
            _Selector.of(scope.franchises, scope.assets, scope.tags),
            _Selector.of(ex.franchises, ex.assets, ex.tags),
        )

    def names_assets(self) -> bool:
        return bool(self.include.asset_ids or self.include.shas or self.exclude.asset_ids
                    or self.exclude.shas)

    def match(self, a: AssetFacts, tags: frozenset[str], franchise: str | None,
              where: str) -> tuple[Level | None, str]:
        excluded = self.exclude.best(a, tags, franchise)
        if excluded is not None:
            return None, f"{excluded[1]} is excluded by {where}.exclude"
        if self.include.empty:
            return Level.all, f"{where} covers all the licensor's assets"
        hit = self.include.best(a, tags, franchise)
        if hit is None:
            return None, f"out of {where} (not among its franchises, tags or assets)"
        return hit[0], f"{hit[1]} in {where}"


@dataclasses.dataclass(frozen=True)
class _Grant:
    index: int
    use: Use
    permission: Permission
    conditions: Conditions | None
    constraint_info: str | None
    scope: _Scope | None
    label: str
    line: int | None


@dataclasses.dataclass(frozen=True)
class _Licence:
    terms: LicenceTerms
    file: str
    version: PolicyVersion
    line: int | None
    licensee: str  # casefolded, or "*"
    scope: _Scope
    territories: frozenset[str]
    model_families: frozenset[str]
    grants: dict[Use, tuple[_Grant, ...]]

    def request_reason(self, licensee: str, on: dt.date, model_family: str | None,
                       territory: str | None) -> str | None:
        """Why this licence does not apply to the request at all, or None when it may."""
        t = self.terms
        if self.licensee != "*" and self.licensee != licensee:
            return f"other licensee ({t.licensee})"
        if t.period.from_ is not None and on < t.period.from_:
            return f"not yet in force (from {t.period.from_})"
        if t.period.to is not None and on > t.period.to:
            return f"expired on {t.period.to}"
        if self.territories:
            if territory is None:
                return f"territory not given; licence limited to {', '.join(t.territories)}"
            if territory.upper() not in self.territories:
                return f"other territory ({territory.upper()} not in {', '.join(t.territories)})"
        if self.model_families:
            if model_family is None:
                return f"model family not given; licence limited to {', '.join(t.model_families)}"
            if model_family.casefold() not in self.model_families:
                return f"other model family ({model_family} not in {', '.join(t.model_families)})"
        return None


def _compile(files: Sequence[LoadedFile]) -> list[_Licence]:
    out = []
    for f in files:
        for terms, prefix in zip(f.terms, f.licence_paths, strict=True):
            grants: dict[Use, list[_Grant]] = {}
            for i, g in enumerate(terms.grants):
                grants.setdefault(g.use, []).append(
                    _Grant(
                        index=i,
                        use=g.use,
                        permission=g.permission,
                        conditions=g.conditions,
                        constraint_info=g.constraint_info,
                        scope=_Scope.of(g.scope) if g.scope is not None else None,
                        label=f"grants[{i}] {g.use}: {g.permission}",
                        line=f.line_of((*prefix, "grants", i)),
                    )
                )
            out.append(
                _Licence(
                    terms=terms,
                    file=f.version.file,
                    version=f.version,
                    line=f.line_of((*prefix, "id")),
                    licensee=terms.licensee if terms.licensee == "*" else terms.licensee.casefold(),
                    scope=_Scope.of(terms.scope),
                    territories=frozenset(terms.territories),
                    model_families=_fold(terms.model_families),
                    grants={u: tuple(gs) for u, gs in grants.items()},
                )
            )
    return out


@dataclasses.dataclass(frozen=True)
class _Request:
    licensee: str
    use: Use
    on: dt.date
    model_family: str | None
    territory: str | None
    resolution: int | None
    attribution: bool | None


def _check_conditions(c: Conditions, a: AssetFacts, r: _Request) -> tuple[bool, list[str]]:
    """(all machine-checked and met, what was checked and how it came out)."""
    notes: list[str] = []
    ok = True
    if c.expires is not None:
        if r.on <= c.expires:
            notes.append(f"expires {c.expires}: met")
        else:
            ok = False
            notes.append(f"expired on {c.expires}: not met")
    if c.model_family is not None:
        families = _fold(c.model_family)
        if r.model_family is None:
            ok = False
            notes.append("model family not given: unchecked")
        elif r.model_family.casefold() in families:
            notes.append(f"model family {r.model_family}: met")
        else:
            ok = False
            notes.append(f"model family {r.model_family} not in {', '.join(c.model_family)}")
    if c.max_resolution is not None:
        side = r.resolution
        if side is None and a.width is not None and a.height is not None:
            side = max(a.width, a.height)  # the asset itself is that small: nothing larger exists
        if side is None:
            ok = False
            notes.append(f"max resolution {c.max_resolution}px: unchecked (no resolution given)")
        elif side <= c.max_resolution:
            notes.append(f"max resolution {c.max_resolution}px: met ({side}px)")
        else:
            ok = False
            notes.append(f"max resolution {c.max_resolution}px: not met ({side}px)")
    if c.attribution_required:
        if r.attribution:
            notes.append("attribution: promised")
        else:
            ok = False
            notes.append("attribution required: not confirmed")
    return ok, notes


PREPARED_CACHE_SIZE = 256


class PolicySet:
    """Loaded, validated and compiled policies. Immutable: reloading builds a new one."""

    def __init__(self, files: Sequence[LoadedFile] = ()) -> None:
        self.files: tuple[LoadedFile, ...] = tuple(files)
        self._licences = _compile(self.files)
        self._by_licensor: dict[str, list[_Licence]] = {}
        for lic in self._licences:
            self._by_licensor.setdefault(lic.terms.licensor.casefold(), []).append(lic)
        self._versions = tuple(f.version for f in self.files)
        scopes = [lic.scope for lic in self._licences] + [
            g.scope for lic in self._licences for gs in lic.grants.values() for g in gs
            if g.scope is not None
        ]
        self._named_ids = frozenset().union(
            *(s.include.asset_ids | s.exclude.asset_ids for s in scopes))
        self._named_shas = frozenset().union(*(s.include.shas | s.exclude.shas for s in scopes))
        self._named_tags: frozenset[str] = frozenset().union(
            *(s.include.tags | s.exclude.tags for s in scopes))
        self._named_franchises: frozenset[str] = frozenset().union(
            *(s.include.franchises | s.exclude.franchises for s in scopes))
        # per-request clauses for decide() called in a loop (bounded; cleared when full)
        self._prepared: dict[_Request, dict[int, tuple[Clause, ...] | None]] = {}
        self._size_matters = any(
            g.conditions is not None and g.conditions.max_resolution is not None
            for lic in self._licences for gs in lic.grants.values() for g in gs
        )

    @classmethod
    def empty(cls) -> PolicySet:
        return cls(())

    @property
    def versions(self) -> list[PolicyVersion]:
        return list(self._versions)

    @property
    def policies(self) -> list[LicenceTerms]:
        return [lic.terms for lic in self._licences]

    def get(self, policy_id: str) -> LicenceTerms:
        for lic in self._licences:
            if lic.terms.id == policy_id:
                return lic.terms
        from registry.errors import NotFound

        raise NotFound("policy", policy_id)

    def version_of(self, policy_id: str) -> PolicyVersion:
        for lic in self._licences:
            if lic.terms.id == policy_id:
                return lic.version
        from registry.errors import NotFound

        raise NotFound("policy", policy_id)

    def __len__(self) -> int:
        return len(self._licences)

    # --- deciding --------------------------------------------------------------------------------

    def _request(self, licensee: str, use: Use | str, on: dt.date | None,
                 model_family: str | None, territory: str | None, resolution: int | None,
                 attribution: bool | None) -> _Request:
        try:
            parsed = Use(use)
        except ValueError:
            raise InvalidInput(
                f"unknown use {use!r} (one of: {', '.join(u.value for u in Use)})"
            ) from None
        if not licensee or not licensee.strip():
            raise InvalidInput("licensee must not be empty")
        return _Request(
            licensee=licensee.strip(),
            use=parsed,
            on=on or dt.datetime.now(dt.UTC).date(),
            model_family=model_family or None,
            territory=territory or None,
            resolution=resolution,
            attribution=attribution,
        )

    def decide(
        self,
        asset: AssetFacts,
        *,
        licensee: str,
        use: Use | str,
        on: dt.date | None = None,
        model_family: str | None = None,
        territory: str | None = None,
        resolution: int | None = None,
        attribution: bool | None = None,
    ) -> Decision:
        """Decide one use of one asset; `on` defaults to today (UTC).

        `resolution` (largest side in px the licensee will use) and `attribution` (the licensee
        will credit the rightsholder) let constrained grants be machine-checked.
        Raises InvalidInput for an unknown use or an empty licensee.
        """
        req = self._request(licensee, use, on, model_family, territory, resolution, attribution)
        prepared = self._prepared.get(req)
        if prepared is None:
            if len(self._prepared) >= PREPARED_CACHE_SIZE:
                self._prepared.clear()
            prepared = self._prepared[req] = self._prepare(req)
        return self._decide(asset, req, prepared)

    def decide_many(
        self,
        assets: Iterable[AssetFacts],
        *,
        licensee: str,
        use: Use | str,
        on: dt.date | None = None,
        model_family: str | None = None,
        territory: str | None = None,
        resolution: int | None = None,
        attribution: bool | None = None,
    ) -> list[Decision]:
        """`decide` for many assets: the same answers, computed once per kind of asset."""
        req = self._request(licensee, use, on, model_family, territory, resolution, attribution)
        prepared = self._prepare(req)
        memo: dict[tuple[object, ...], Decision] = {}
        out: list[Decision] = []
        named_ids, named_shas = self._named_ids, self._named_shas
        size = self._size_matters and req.resolution is None
        # A decision depends on tags and franchises only through the ones policies name.
        known_tags, known_franchises = self._named_tags, self._named_franchises
        for a in assets:
            if a.asset_id in named_ids or a.sha256 in named_shas:
                out.append(self._decide(a, req, prepared))
                continue
            franchise = a.franchise.casefold() if a.franchise is not None else None
            key: tuple[object, ...] = (
                a.rightsholder.casefold(),
                franchise if franchise in known_franchises else None,
                _fold(a.tags) & known_tags,
                (a.width, a.height) if size else None,
            )
            hit = memo.get(key)
            if hit is None:
                hit = memo[key] = self._decide(a, req, prepared)
                out.append(hit)
            else:
                out.append(
                    Decision(hit.outcome, hit.use, hit.licensee, a.asset_id, hit.explanation,
                             hit.decided_by, hit.rule, hit.policy_versions, a.sha256, hit.on,
                             hit.decided_by_version)
                )
        return out

    def _prepare(self, req: _Request) -> dict[int, tuple[Clause, ...] | None]:
        """Per licence: the clauses that say why it cannot apply to this request at all (no
        grant for the use, other licensee, out of its period...), or None when it may apply.
        Built once per request, shared by every decision of a batch."""
        folded = req.licensee.casefold()
        out: dict[int, tuple[Clause, ...] | None] = {}
        for lic in self._licences:
            pid, file = lic.terms.id, lic.file
            grants = lic.grants.get(req.use, ())
            reason = lic.request_reason(folded, req.on, req.model_family, req.territory)
            if not grants:
                out[id(lic)] = (Clause(pid, file, None, False, f"no grant for {req.use}",
                                       line=lic.line),)
            elif reason is not None:
                out[id(lic)] = tuple(
                    Clause(pid, file, g.label, False, reason, str(g.permission), line=g.line)
                    for g in grants
                )
            else:
                out[id(lic)] = None
        return out

    def _decide(self, a: AssetFacts, req: _Request,
                prepared: dict[int, tuple[Clause, ...] | None]) -> Decision:
        tags = _fold(a.tags)
        franchise = a.franchise.casefold() if a.franchise is not None else None
        clauses: list[Clause] = []
        # (clause index, effective permission, licence, a more specific grant overrode
        # a different one in this licence) of the grants that survived specificity
        survivors: list[tuple[int, str, _Licence, bool]] = []
        for lic in self._by_licensor.get(a.rightsholder.casefold(), ()):
            pid, file = lic.terms.id, lic.file
            fixed = prepared[id(lic)]
            if fixed is not None:
                clauses.extend(fixed)
                continue
            grants = lic.grants[req.use]
            level, why = lic.scope.match(a, tags, franchise, "scope")
            if level is None:
                clauses.extend(
                    Clause(pid, file, g.label, False, why, str(g.permission), line=g.line)
                    for g in grants
                )
                continue
            applicable: list[tuple[_Grant, Level, str]] = []
            for g in grants:
                if g.scope is not None:
                    glevel, gwhy = g.scope.match(a, tags, franchise, f"grants[{g.index}].scope")
                    if glevel is None:
                        clauses.append(Clause(pid, file, g.label, False, gwhy,
                                              str(g.permission), line=g.line))
                        continue
                    if glevel == Level.all:
                        glevel, gwhy = level, why
                    applicable.append((g, glevel, gwhy))
                else:
                    applicable.append((g, level, why))
            if not applicable:
                continue
            top = max(lv for _, lv, _ in applicable)
            winners = [(g, lv, w) for g, lv, w in applicable if lv == top]
            winning_perms = set()
            for g, lv, w in winners:
                effective, text = self._effective(g, a, req)
                winning_perms.add(effective)
                survivors.append((len(clauses), effective, lic, False))
                clauses.append(Clause(pid, file, g.label, True, f"{w}{text}",
                                      str(g.permission), lv.name, g.line))
            for g, lv, _w in applicable:
                if lv == top:
                    continue
                effective, _ = self._effective(g, a, req)
                if effective not in winning_perms:
                    survivors[:] = [
                        (i, e, li, li is lic or m) for i, e, li, m in survivors
                    ]
                clauses.append(Clause(
                    pid, file, g.label, False,
                    f"overridden by a more specific grant ({top.name} > {lv.name}) "
                    "of the same licence",
                    str(g.permission), lv.name, g.line))
        return self._resolve(a, req, tuple(clauses), survivors)

    @staticmethod
    def _effective(g: _Grant, a: AssetFacts, req: _Request) -> tuple[str, str]:
        """The grant's effect for this request: allowed, notAllowed or review (+ why)."""
        if g.permission is not Permission.constrained:
            return str(g.permission), ""
        info = f" ({g.constraint_info})" if g.constraint_info else ""
        if g.conditions is None or g.conditions.empty:
            return "review", f"; constrained{info}: not machine-checkable"
        ok, notes = _check_conditions(g.conditions, a, req)
        text = "; ".join(notes)
        if ok:
            return "allowed", f"; constrained, every condition met: {text}"
        return "review", f"; constrained{info}: {text}"

    def _resolve(self, a: AssetFacts, req: _Request, clauses: tuple[Clause, ...],
                 survivors: list[tuple[int, str, _Licence, bool]]) -> Decision:
        def make(outcome: Outcome, rule: Rule, pick: tuple[int, str, _Licence, bool] | None
                 ) -> Decision:
            return Decision(
                outcome=outcome, use=req.use, licensee=req.licensee, asset_id=a.asset_id,
                explanation=clauses,
                decided_by=clauses[pick[0]].ref if pick else None,
                rule=rule, policy_versions=self._versions, sha256=a.sha256, on=req.on,
                decided_by_version=pick[2].version if pick else None,
            )

        if not survivors:
            return make(Outcome.denied, Rule.rights_reserved, None)
        effects = {e for _, e, _, _ in survivors}
        for wanted, outcome in (("notAllowed", Outcome.denied), ("review", Outcome.review),
                                ("allowed", Outcome.allowed)):
            picks = [s for s in survivors if s[1] == wanted]
            if not picks:
                continue
            pick = picks[0]
            if outcome is Outcome.review:
                rule = Rule.constrained_needs_review
            elif len(effects) > 1 and outcome is Outcome.denied:
                rule = Rule.notAllowed_beats_allowed
            elif pick[3]:
                rule = Rule.more_specific_scope
            elif outcome is Outcome.denied:
                rule = Rule.not_allowed
            elif clauses[pick[0]].permission == Permission.constrained:
                rule = Rule.constrained_conditions_met
            else:
                rule = Rule.allowed
            return make(outcome, rule, pick)
        raise AssertionError(f"unknown effects {effects}")  # pragma: no cover
