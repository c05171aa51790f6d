"""Licence policies: YAML files in policies/ -> typed licence terms -> decisions with explanations.

Other areas use only what is exported here:

    policy_set = load_policies(settings.policies_dir)
    decision = policy_set.decide(AssetFacts.from_asset(asset), licensee="Lumen AI",
                                 use=Use.ai_training)
"""

from registry.policy.decision import (
    AssetFacts,
    Clause,
    Decision,
    Level,
    Outcome,
    PolicySet,
    Rule,
)
from registry.policy.loader import PolicyProblem, PolicyVersion, parse_policy_text
from registry.policy.odrl import to_odrl
from registry.policy.service import (
    PolicyHolder,
    check_policies,
    find_policy_version,
    list_policy_versions,
    load_policies,
    record_policy_versions,
)
from registry.policy.terms import LicenceTerms, Permission, Use, policy_json_schema

__all__ = [
    "AssetFacts",
    "Clause",
    "Decision",
    "Level",
    "LicenceTerms",
    "Outcome",
    "Permission",
    "PolicyHolder",
    "PolicyProblem",
    "PolicySet",
    "PolicyVersion",
    "Rule",
    "Use",
    "check_policies",
    "find_policy_version",
    "list_policy_versions",
    "load_policies",
    "parse_policy_text",
    "policy_json_schema",
    "record_policy_versions",
    "to_odrl",
]
