"""Properties of decisions over random policy sets (hypothesis).

- Adding an `allowed` grant (in a new licence, for any scope and licensee) never turns a denial
  caused by `notAllowed` into anything else.
- Without policies every decision is denied, rights reserved.
- `decide_many` agrees with `decide`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.policy import AssetFacts, Outcome, PolicySet, Rule, Use, parse_policy_text

HOLDERS = ["Studio A", "Studio B"]
FRANCHISES = ["Alpha", "Beta"]
TAGS = ["t1", "t2", "t3"]
LICENSEES = ["Partner", "Other"]
DAY = dt.date(2026, 6, 1)

uses = st.sampled_from(list(Use))
scopes = st.fixed_dictionaries(
    {},
    optional={
        "franchises": st.lists(st.sampled_from(FRANCHISES), max_size=2, unique=True),
        "tags": st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
        "assets": st.lists(st.integers(1, 4), max_size=2, unique=True),
        "exclude": st.fixed_dictionaries(
            {}, optional={"tags": st.lists(st.sampled_from(TAGS), max_size=1),
                          "assets": st.lists(st.integers(1, 4), max_size=1)}),
    },
)
conditions = st.fixed_dictionaries(
    {},
    optional={
        "max_resolution": st.sampled_from([512, 1024, 4096]),
        "attribution_required": st.booleans(),
        "model_family": st.lists(st.sampled_from(["vision", "llm"]), min_size=1, max_size=2),
        "expires": st.sampled_from([dt.date(2026, 1, 1), dt.date(2027, 1, 1)]),
    },
)


@st.composite
def grants(draw: st.DrawFn) -> dict[str, Any]:
    permission = draw(st.sampled_from(["allowed", "notAllowed", "constrained"]))
    grant: dict[str, Any] = {"use": str(draw(uses)), "permission": permission}
    if permission == "constrained":
        grant["constraint_info"] = "see contract"
        cond = draw(conditions)
        if cond:
            grant["conditions"] = cond
    if draw(st.booleans()):
        grant["scope"] = draw(scopes)
    return grant


@st.composite
def licences(draw: st.DrawFn, index: int) -> dict[str, Any]:
    lic: dict[str, Any] = {
        "id": f"p{index}",
        "licensor": draw(st.sampled_from(HOLDERS)),
        "licensee": draw(st.sampled_from([*LICENSEES, "*"])),
        "scope": draw(scopes),
        "grants": draw(st.lists(grants(), min_size=1, max_size=4)),
    }
    period = draw(st.sampled_from([{}, {"from": dt.date(2026, 1, 1)},
                                   {"to": dt.date(2026, 3, 1)},
                                   {"from": dt.date(2026, 1, 1), "to": dt.date(2026, 12, 31)}]))
    if period:
        lic["period"] = period
    return lic


@st.composite
def policy_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 4))
    return [draw(licences(i)) for i in range(n)]


assets = st.builds(
    AssetFacts,
    asset_id=st.integers(1, 4),
    sha256=st.just("f" * 64),
    rightsholder=st.sampled_from(HOLDERS),
    franchise=st.sampled_from([*FRANCHISES, None]),
    tags=st.lists(st.sampled_from(TAGS), max_size=2, unique=True).map(tuple),
    width=st.sampled_from([None, 800, 3000]),
    height=st.sampled_from([None, 600]),
)
requests = st.fixed_dictionaries({
    "licensee": st.sampled_from(LICENSEES),
    "use": uses,
    "model_family": st.sampled_from([None, "vision", "llm"]),
    "attribution": st.sampled_from([None, True]),
})


def build(licence_dicts: list[dict[str, Any]]) -> PolicySet:
    files = []
    for lic in licence_dicts:
        loaded, problems = parse_policy_text(yaml.safe_dump(lic, sort_keys=False),
                                             f"{lic['id']}.yaml")
        assert loaded is not None, problems
        files.append(loaded)
    return PolicySet(files)


FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(policy_sets(), assets, requests, st.sampled_from([*LICENSEES, "*"]), uses, scopes,
       st.data())
def test_adding_an_allowed_grant_never_lifts_a_not_allowed_denial(
    licence_dicts: list[dict[str, Any]], asset: AssetFacts, request: dict[str, Any],
    new_licensee: str, _use: Use, new_scope: dict[str, Any], data: st.DataObject,
) -> None:
    # Make a notAllowed for this use likely to apply, so the interesting case comes up often.
    blocker = {
        "id": "blocker",
        "licensor": asset.rightsholder,
        "licensee": data.draw(st.sampled_from([request["licensee"], "*"])),
        "scope": data.draw(st.sampled_from([{}, {"tags": list(asset.tags)[:1]}, new_scope])),
        "grants": [{"use": str(request["use"]), "permission": "notAllowed"},
                   *data.draw(st.lists(grants(), max_size=2))],
    }
    if blocker["scope"] == {"tags": []}:
        blocker["scope"] = {}
    licence_dicts = [*licence_dicts, blocker]
    before = build(licence_dicts).decide(asset, on=DAY, **request)
    extra = {
        "id": "added",
        "licensor": asset.rightsholder,
        "licensee": data.draw(st.sampled_from([request["licensee"], new_licensee])),
        "scope": new_scope,
        "grants": [{"use": str(request["use"]), "permission": "allowed",
                    **({"scope": {"assets": [asset.asset_id]}} if data.draw(st.booleans())
                       else {})}],
    }
    after = build([*licence_dicts, extra]).decide(asset, on=DAY, **request)
    if before.outcome is Outcome.denied and before.rule is not Rule.rights_reserved:
        assert after.outcome is Outcome.denied
        assert after.decided_by == before.decided_by


@FAST
@given(policy_sets(), assets, requests)
def test_without_policies_every_decision_is_denied_rights_reserved(
    licence_dicts: list[dict[str, Any]], asset: AssetFacts, request: dict[str, Any]
) -> None:
    build(licence_dicts)  # whatever there was, it is removed
    d = PolicySet.empty().decide(asset, on=DAY, **request)
    assert (d.outcome, d.rule, d.decided_by) == (Outcome.denied, Rule.rights_reserved, None)


@FAST
@given(policy_sets(), st.lists(assets, min_size=1, max_size=12), requests)
def test_decide_many_agrees_with_decide(
    licence_dicts: list[dict[str, Any]], batch: list[AssetFacts], request: dict[str, Any]
) -> None:
    policy_set = build(licence_dicts)
    many = policy_set.decide_many(batch, on=DAY, **request)
    assert many == [policy_set.decide(a, on=DAY, **request) for a in batch]


@FAST
@given(policy_sets(), assets, requests)
def test_every_decision_explains_itself(
    licence_dicts: list[dict[str, Any]], asset: AssetFacts, request: dict[str, Any]
) -> None:
    d = build(licence_dicts).decide(asset, on=DAY, **request)
    ours = [lic for lic in licence_dicts if lic["licensor"] == asset.rightsholder]
    assert {c.policy_id for c in d.explanation} == {lic["id"] for lic in ours}
    if d.rule is Rule.rights_reserved:
        assert d.outcome is Outcome.denied and not any(c.applied for c in d.explanation)
    else:
        assert any(c.applied and c.ref == d.decided_by for c in d.explanation)
