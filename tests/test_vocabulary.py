"""The uses, permissions and "most restrictive wins" are defined once and shared."""

from __future__ import annotations

from registry import policy, provenance, vocabulary
from registry.clearance import optout, runner
from registry.provenance import training


def test_every_area_uses_the_one_vocabulary() -> None:
    assert policy.Permission is provenance.Permission is vocabulary.Permission
    assert policy.Use is vocabulary.Use
    assert runner.USES == training.USES == vocabulary.USES == (
        "ai_training", "ai_generative_training", "ai_inference", "data_mining")


def test_the_most_restrictive_wins_everywhere() -> None:
    assert vocabulary.most_restrictive(["allowed", "constrained", "notAllowed"]) == "notAllowed"
    assert vocabulary.most_restrictive(["allowed", "constrained"]) == "constrained"
    assert vocabulary.most_restrictive(["allowed", "maybe"]) == "constrained"  # unknown: review
    assert vocabulary.most_restrictive([]) is None
    signals = [{"permission": "allowed"}, {"permission": "constrained"}]
    assert optout.most_restrictive(signals) == "constrained"
    worst = training.most_restrictive([
        training.UsePermission("ai_training", training.Permission.constrained, "ask"),
        training.UsePermission("ai_training", training.Permission.allowed)])
    assert worst is not None and worst.permission is vocabulary.Permission.constrained
    assert worst.constraint_info == "ask"
