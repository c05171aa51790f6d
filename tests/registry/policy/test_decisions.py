"""Table-driven decisions: every rule in the README's "Licence policies", with its reasons."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from registry.errors import InvalidInput
from registry.policy import Outcome, PolicySet, Rule, Use
from tests.registry.policy.sample import ASSETS, STUDIO_A_IDS, sample_set

IN_FORCE = dt.date(2026, 5, 1)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    asset: str
    licensee: str
    use: str
    outcome: Outcome
    rule: Rule
    decided_by: str | None = None
    reason: str | None = None  # a substring of some clause's reason
    on: dt.date = IN_FORCE
    kwargs: tuple[tuple[str, Any], ...] = ()


A, D, R = Outcome.allowed, Outcome.denied, Outcome.review

CASES = [
    Case("licence in force allows training", "alpha", "Partner", "ai_training", A, Rule.allowed,
         "a-partner#grants[0]", "franchise 'Alpha' in scope"),
    Case("expired licence denies with rights reserved", "alpha", "Partner", "ai_training", D,
         Rule.rights_reserved, None, "expired on 2026-12-31", on=dt.date(2027, 1, 15)),
    Case("licence not yet in force denies", "alpha", "Partner", "ai_training", D,
         Rule.rights_reserved, None, "not yet in force", on=dt.date(2025, 12, 31)),
    Case("last day of the period is still in force", "alpha", "Partner", "ai_training", A,
         Rule.allowed, "a-partner#grants[0]", on=dt.date(2026, 12, 31)),
    Case("wrong licensee is denied", "alpha", "Someone Else", "ai_training", D,
         Rule.rights_reserved, None, "other licensee (Partner)"),
    Case("licensee names match whatever their case", "alpha", "partner", "ai_inference", A,
         Rule.allowed, "a-partner#grants[1]"),
    Case("excluded tag inside an included franchise is denied", "alpha_secret", "Partner",
         "ai_training", D, Rule.rights_reserved, None, "tag 'secret' is excluded"),
    Case("excluded asset inside an included franchise is denied", "alpha_13", "Partner",
         "ai_training", D, Rule.rights_reserved, None, "asset 13 is excluded"),
    Case("notAllowed grant alone denies", "alpha", "Partner", "ai_generative_training", D,
         Rule.not_allowed, "a-partner#grants[2]", "out of grants[3].scope"),
    Case("tag grant beats franchise grant in the same licence", "alpha_promo", "Partner",
         "ai_generative_training", A, Rule.more_specific_scope, "a-partner#grants[3]",
         "overridden by a more specific grant (tag > franchise)"),
    Case("constrained with every condition met is allowed", "alpha_small", "Partner",
         "data_mining", A, Rule.constrained_conditions_met, "a-partner#grants[4]",
         "max resolution 1024px: met (800px)", kwargs=(("attribution", True),)),
    Case("constrained with a resolution over the limit needs review", "alpha_big", "Partner",
         "data_mining", R, Rule.constrained_needs_review, "a-partner#grants[4]",
         "not met (4000px)", kwargs=(("attribution", True),)),
    Case("a declared resolution within the limit meets the condition", "alpha_big", "Partner",
         "data_mining", A, Rule.constrained_conditions_met, "a-partner#grants[4]",
         "met (1024px)", kwargs=(("attribution", True), ("resolution", 1024))),
    Case("constrained without promised attribution needs review", "alpha_small", "Partner",
         "data_mining", R, Rule.constrained_needs_review, "a-partner#grants[4]",
         "attribution required: not confirmed"),
    Case("notAllowed beats allowed from another licence", "beta", "Partner", "ai_inference", D,
         Rule.notAllowed_beats_allowed, "a-everyone-beta#grants[0]"),
    Case("a licence for anyone applies to any licensee", "beta", "Someone Else", "ai_inference",
         D, Rule.not_allowed, "a-everyone-beta#grants[0]"),
    Case("allowed for anyone", "beta", "Someone Else", "ai_training", A, Rule.allowed,
         "a-everyone-beta#grants[1]"),
    Case("constrained met plus allowed is allowed", "beta", "Partner", "ai_training", A,
         Rule.allowed, "a-everyone-beta#grants[1]", "model family vision: met",
         kwargs=(("model_family", "vision"),)),
    Case("constrained with the wrong model family needs review even beside an allowed", "beta",
         "Partner", "ai_training", R, Rule.constrained_needs_review, "a-partner-beta#grants[1]",
         "model family llm not in vision", kwargs=(("model_family", "llm"),)),
    Case("constrained past its expiry condition needs review", "beta", "Partner", "ai_training",
         R, Rule.constrained_needs_review, "a-partner-beta#grants[1]",
         "expired on 2026-06-30: not met", on=dt.date(2026, 8, 1),
         kwargs=(("model_family", "vision"),)),
    Case("constrained condition that cannot be checked needs review", "beta", "Partner",
         "ai_training", R, Rule.constrained_needs_review, "a-partner-beta#grants[1]",
         "model family not given: unchecked"),
    Case("constrained with words only is never machine-checked", "beta", "Partner",
         "data_mining", R, Rule.constrained_needs_review, "a-partner-beta#grants[2]",
         "not machine-checkable"),
    Case("franchise notAllowed denies", "gamma", "Partner", "data_mining", D, Rule.not_allowed,
         "a-gamma#grants[0]"),
    Case("asset grant beats franchise notAllowed in the same licence", "gamma_42", "Partner",
         "data_mining", A, Rule.more_specific_scope, "a-gamma#grants[1]",
         "(asset > franchise)"),
    Case("tag grant beats franchise notAllowed in the same licence", "gamma_open", "Partner",
         "data_mining", A, Rule.more_specific_scope, "a-gamma#grants[2]"),
    Case("tag notAllowed beats franchise allowed in the same licence", "gamma_stunt",
         "Partner", "ai_training", D, Rule.more_specific_scope, "a-gamma#grants[4]"),
    Case("untouched franchise grant applies", "gamma", "Partner", "ai_training", A,
         Rule.allowed, "a-gamma#grants[3]"),
    Case("territory and model family inside the licence", "a_loose", "Regional",
         "ai_inference", A, Rule.allowed, "a-territory#grants[0]",
         "covers all the licensor's assets",
         kwargs=(("territory", "fr"), ("model_family", "vision"))),
    Case("other territory is denied", "a_loose", "Regional", "ai_inference", D,
         Rule.rights_reserved, None, "other territory (US not in FR, DE)",
         kwargs=(("territory", "US"), ("model_family", "vision"))),
    Case("territory not given for a territorial licence is denied", "a_loose", "Regional",
         "ai_inference", D, Rule.rights_reserved, None, "territory not given",
         kwargs=(("model_family", "vision"),)),
    Case("other model family is denied", "a_loose", "Regional", "ai_inference", D,
         Rule.rights_reserved, None, "other model family (llm not in vision)",
         kwargs=(("territory", "FR"), ("model_family", "llm"))),
    Case("a licence without a grant for the use is listed as such", "alpha", "Partner",
         "ai_inference", A, Rule.allowed, "a-partner#grants[1]", "no grant for ai_inference"),
    Case("other rightsholder's expired licence", "b", "Partner", "ai_training", D,
         Rule.rights_reserved, None, "expired on 2025-06-30"),
    Case("future licence not in force yet", "b", "Partner", "data_mining", D,
         Rule.rights_reserved, None, "not yet in force (from 2027-01-01)"),
    Case("future licence once in force", "b", "Partner", "data_mining", A, Rule.allowed,
         "b-future#grants[0]", on=dt.date(2027, 2, 1)),
    Case("asset named by sha256", "b_sha", "Partner", "ai_inference", A, Rule.allowed,
         "b-by-sha#grants[0]", "asset abababababab in scope"),
    Case("asset outside every scope", "b", "Partner", "ai_inference", D,
         Rule.rights_reserved, None, "out of scope"),
    Case("no policy at all: denied, rights reserved", "c", "Partner", "ai_training", D,
         Rule.rights_reserved, None),
]


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    return sample_set(tmp_path_factory.mktemp("decisions"))


def test_the_table_covers_every_rule_and_outcome() -> None:
    assert len(CASES) >= 30
    assert {c.rule for c in CASES} == set(Rule)
    assert {c.outcome for c in CASES} == set(Outcome)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(policies: PolicySet, case: Case) -> None:
    asset = ASSETS[case.asset]
    d = policies.decide(asset, licensee=case.licensee, use=case.use, on=case.on,
                        **dict(case.kwargs))
    assert (d.outcome, d.rule, d.decided_by) == (case.outcome, case.rule, case.decided_by), (
        d.summary, [c.reason for c in d.explanation])
    if case.reason is not None:
        assert any(case.reason in c.reason for c in d.explanation), [
            c.reason for c in d.explanation]
    # every licence of the asset's rightsholder is in the explanation, applied or not
    considered = {c.policy_id for c in d.explanation}
    if asset.rightsholder == "Studio A":
        assert considered == STUDIO_A_IDS
    elif asset.rightsholder == "Studio C":
        assert considered == set()
    applied = [c for c in d.explanation if c.applied]
    assert bool(applied) == (d.rule is not Rule.rights_reserved)
    if d.decided_by is not None:
        assert d.decided_by_version is not None
        assert d.decided_by_version.file in {v.file for v in d.policy_versions}
        assert any(c.applied and c.ref == d.decided_by for c in d.explanation)
    assert d.as_dict()["outcome"] == str(case.outcome)
    assert str(case.outcome) in d.summary


def test_decide_many_gives_the_same_decisions_as_decide(policies: PolicySet) -> None:
    for case in CASES:
        batch = [ASSETS[case.asset], ASSETS["alpha"], ASSETS[case.asset], ASSETS["gamma_42"]]
        many = policies.decide_many(batch, licensee=case.licensee, use=case.use, on=case.on,
                                    **dict(case.kwargs))
        one = [policies.decide(a, licensee=case.licensee, use=case.use, on=case.on,
                               **dict(case.kwargs)) for a in batch]
        assert many == one


def test_an_empty_policy_set_denies_everything_as_rights_reserved() -> None:
    empty = PolicySet.empty()
    for asset in ASSETS.values():
        for use in Use:
            d = empty.decide(asset, licensee="Partner", use=use, on=IN_FORCE)
            assert (d.outcome, d.rule, d.explanation) == (Outcome.denied,
                                                          Rule.rights_reserved, ())


def test_unknown_use_and_empty_licensee_are_invalid_input(policies: PolicySet) -> None:
    with pytest.raises(InvalidInput, match="unknown use 'ai_dreaming'"):
        policies.decide(ASSETS["alpha"], licensee="Partner", use="ai_dreaming")
    with pytest.raises(InvalidInput, match="licensee"):
        policies.decide(ASSETS["alpha"], licensee="  ", use=Use.ai_training)


def test_decision_defaults_to_today(policies: PolicySet) -> None:
    d = policies.decide(ASSETS["c"], licensee="Partner", use="ai_training")
    assert d.on == dt.datetime.now(dt.UTC).date()


def test_shipped_policies_give_the_demo_decisions(tmp_path: Path) -> None:
    from registry.policy import AssetFacts, load_policies

    shipped = load_policies(Path(__file__).resolve().parents[3] / "policies")
    on = dt.date(2026, 11, 25)

    def decide(holder: str, franchise: str, licensee: str, use: Use, *tags: str,
               **kw: Any) -> Any:
        asset = AssetFacts(1, "0" * 64, holder, franchise, tags, 2048, 1536)
        return shipped.decide(asset, licensee=licensee, use=use, on=on, **kw)

    nw, mp = "Northwind Games", "Meridian Pictures"
    assert decide(nw, "Skyreach", "internal-ml", Use.ai_inference).outcome is A
    assert decide(nw, "Skyreach", "internal-ml", Use.data_mining).outcome is A
    assert decide(nw, "Skyreach", "internal-ml", Use.ai_generative_training).outcome is D
    assert decide(nw, "Skyreach", "internal-ml", Use.data_mining, "unreleased").outcome is D
    assert decide(nw, "Skyreach", "internal-ml", Use.ai_training,
                  model_family="northwind-vision").outcome is A
    assert decide(nw, "Skyreach", "Lumen AI", Use.ai_inference).outcome is D
    assert decide(mp, "Harbor Lights", "Lumen AI", Use.ai_training).outcome is A
    assert decide(mp, "Harbor Lights", "Lumen AI", Use.ai_generative_training).outcome is D
    assert decide(mp, "Harbor Lights", "Lumen AI", Use.ai_generative_training,
                  "press-kit").outcome is A
    expired = decide(mp, "Harbor Lights", "Lumen AI", Use.data_mining)
    assert expired.outcome is D and any("expired" in c.reason for c in expired.explanation)
    assert decide(mp, "Harbor Lights", "internal-ml", Use.ai_inference).outcome is R
    assert decide(mp, "Harbor Lights", "internal-ml", Use.ai_inference, resolution=1024,
                  attribution=True).outcome is A
