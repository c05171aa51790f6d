"""Policy routes: POST /v1/decisions, GET /v1/policies, reload and ODRL export.

The PolicySet in force lives on the app (`app.state.policy_holder`), loaded from
Settings.policies_dir on first use. A reload that fails validation answers 422 naming file, line
and field, and the previous policies stay in force.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api.deps import SessionDep, actor_of, requires
from api.schemas.policy import DecisionBatch, DecisionRequest, PolicyList
from registry.access import ApiKey, Role
from registry.audit import record
from registry.catalog import Asset
from registry.errors import InvalidInput, NotFound
from registry.policy import (
    AssetFacts,
    PolicyHolder,
    PolicySet,
    policy_json_schema,
    record_policy_versions,
    to_odrl,
)

router = APIRouter(prefix="/v1", tags=["policy"])

Reader = Annotated[ApiKey, Depends(requires(Role.legal, Role.ml))]
OdrlReader = Annotated[ApiKey, Depends(requires(Role.legal, Role.ml, Role.partner))]
Admin = Annotated[ApiKey, Depends(requires())]


def policy_holder(request: Request) -> PolicyHolder:
    state = request.app.state
    holder: PolicyHolder | None = getattr(state, "policy_holder", None)
    if holder is None:
        holder = PolicyHolder(state.settings.policies_dir)
        state.policy_holder = holder
    return holder


SHA256_HEX_LENGTH = 64
MAX_ASSET_ID = 2**31 - 1  # assets.id is a 32-bit integer on PostgreSQL

HolderDep = Annotated[PolicyHolder, Depends(policy_holder)]


def _current(holder: PolicyHolder, session: Session) -> PolicySet:
    policy_set = holder.current()
    record_policy_versions(session, policy_set)  # once per (file, sha256); cheap afterwards
    return policy_set


def _policy_list(policy_set: PolicySet) -> dict[str, Any]:
    policies = []
    for t in policy_set.policies:
        v = policy_set.version_of(t.id)
        policies.append({
            "id": t.id,
            "title": t.title,
            "licensor": t.licensor,
            "licensee": t.licensee,
            "valid_from": t.period.from_,
            "valid_to": t.period.to,
            "territories": list(t.territories),
            "model_families": list(t.model_families),
            "scope": t.scope.model_dump(mode="json"),
            "grants": [{"use": str(g.use), "permission": str(g.permission),
                        "constraint_info": g.constraint_info} for g in t.grants],
            "file": v.file,
            "sha256": v.sha256,
        })
    return {"policies": policies, "versions": [v.as_dict() for v in policy_set.versions]}


@router.get("/policies", response_model=PolicyList)
def list_policies(session: SessionDep, holder: HolderDep, _: Reader) -> object:
    """The policies in force, with the version (file, sha256, load time) of each file."""
    return _policy_list(_current(holder, session))


@router.post("/policies/reload", response_model=PolicyList)
def reload_policies(session: SessionDep, holder: HolderDep, key: Admin) -> object:
    """Load the policy files again (admin). Invalid files: 422, and nothing changes."""
    policy_set = holder.reload()
    record_policy_versions(session, policy_set)
    record(session, actor=actor_of(key), action="policy.reload", subject="policies",
           versions=[v.as_dict() for v in policy_set.versions])
    return _policy_list(policy_set)


@router.get("/policies/schema")
def get_policy_schema(_: Reader) -> dict[str, Any]:
    """The JSON Schema of a policy file."""
    return policy_json_schema()


@router.get("/policies/{policy_id}/odrl")
def export_odrl(policy_id: str, session: SessionDep, holder: HolderDep,
                _: OdrlReader) -> dict[str, Any]:
    """One licence as ODRL 2.2 JSON-LD."""
    return to_odrl(_current(holder, session).get(policy_id))


def _asset_key(key: int | str) -> int | str:
    """An asset id (int) or a lowercase sha256; ids beyond the column's range cannot exist."""
    if isinstance(key, str):
        text = key.strip().lower()
        if len(text) == SHA256_HEX_LENGTH and all(c in "0123456789abcdef" for c in text):
            return text
        if not (text.isascii() and text.isdigit()):
            raise InvalidInput(f"asset {key!r} is neither an id nor a sha256 hex digest")
        key = int(text)
    return key if 0 < key <= MAX_ASSET_ID else -1


@router.post("/decisions", response_model=DecisionBatch)
def decide(body: DecisionRequest, session: SessionDep, holder: HolderDep,
           key: Reader) -> object:
    """Decide one use for a batch of assets (ids or sha256s), each with its explanation."""
    policy_set = _current(holder, session)
    keys = [_asset_key(k) for k in body.assets]
    ids = {k for k in keys if isinstance(k, int)}
    shas = {k for k in keys if isinstance(k, str)}
    rows = session.scalars(
        select(Asset).where(or_(Asset.id.in_(ids), Asset.sha256.in_(shas)))
    ).unique().all()
    found: dict[int | str, Asset] = {a.id: a for a in rows} | {a.sha256: a for a in rows}
    ordered = [found[k] for k in keys if k in found]
    missing = [str(raw) for raw, k in zip(body.assets, keys, strict=True) if k not in found]
    if missing:
        raise NotFound("asset", ", ".join(missing[:20]))
    decisions = policy_set.decide_many(
        [AssetFacts.from_asset(a) for a in ordered],
        licensee=body.licensee, use=body.use, on=body.on, model_family=body.model_family,
        territory=body.territory, resolution=body.resolution, attribution=body.attribution,
    )
    counts = Counter(str(d.outcome) for d in decisions)
    record(session, actor=actor_of(key), action="policy.decide",
           subject=f"licensee:{body.licensee}",
           use=str(body.use), on=str(decisions[0].on), assets=len(decisions),
           outcomes=dict(counts), versions=[v.as_dict() for v in policy_set.versions])
    out = []
    for d in decisions:
        item = d.as_dict()
        del item["policy_versions"]  # once for the batch, below
        out.append(item)
    return {"decisions": out, "policy_versions": [v.as_dict() for v in policy_set.versions]}
