"""Malformed policy files: each error names file, line and field; nothing is half-loaded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from registry.errors import InvalidPolicy
from registry.policy import (
    PolicyHolder,
    Use,
    check_policies,
    load_policies,
    parse_policy_text,
    policy_json_schema,
)
from tests.registry.policy.sample import ASSETS, write_sample

GOOD = """\
id: good
licensor: Studio A
licensee: Partner
period:
  from: 2026-01-01
  to: 2026-12-31
grants:
  - use: ai_training
    permission: allowed
"""

# case -> (file text, expected line, expected field, words in the message)
MALFORMED = {
    "bad yaml": ("id: bad\ngrants:\n  - use: ai_training\n    permission: [allowed\n", 5, "",
                 "invalid YAML"),
    "unknown use": (GOOD.replace("use: ai_training", "use: ai_dreaming"), 8, "grants[0].use",
                    "ai_dreaming"),
    "unknown permission": (GOOD.replace("permission: allowed", "permission: maybe"), 9,
                           "grants[0].permission", "maybe"),
    "unknown field": (GOOD.replace("licensee: Partner", "licensee: Partner\nlicence_fee: 10"),
                      4, "licence_fee", "unknown field"),
    "wrong type": (GOOD.replace("licensee: Partner", "licensee: Partner\nterritories: FR"), 4,
                   "territories", "tuple"),
    "wrong type in conditions": (
        GOOD.replace("permission: allowed",
                     "permission: constrained\n    conditions:\n      max_resolution: big"),
        11, "grants[0].conditions.max_resolution", "integer"),
    "date to before from": (GOOD.replace("to: 2026-12-31", "to: 2025-12-31"), 6, "period.to",
                            "before 'from'"),
    "not a date": (GOOD.replace("from: 2026-01-01", "from: next spring"), 5, "period.from",
                   "date"),
    "missing grants": (GOOD.split("grants:")[0], 1, "grants", "required"),
    "duplicate key": (GOOD + "licensee: Other\n", 10, "licensee", "duplicate key"),
    "conditions on an allowed grant": (
        GOOD.replace("permission: allowed",
                     "permission: allowed\n    conditions: {max_resolution: 10}"), 8,
        "grants[0]", "only for a 'constrained' grant"),
    "constrained with nothing to say": (
        GOOD.replace("permission: allowed", "permission: constrained"), 8, "grants[0]",
        "needs constraint_info or conditions"),
    "bad asset key": (GOOD.replace("period:", "scope: {assets: [not-a-sha]}\nperiod:"), 4,
                      "scope.assets", "neither an id nor a sha256"),
    "not a mapping": ("- just\n- a list\n", 1, "", "mapping"),
    "empty file": ("", 1, "", "empty"),
    "licence list entry": ("licensor: Studio A\nlicences:\n  - id: x\n    licensee: P\n"
                           "    grants:\n      - {use: ai_training, permission: never}\n", 6,
                           "licences[0].grants[0].permission", "never"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_error_names_file_line_and_field(case: str) -> None:
    text, line, field, words = MALFORMED[case]
    loaded, problems = parse_policy_text(text, "bad.yaml")
    assert loaded is None
    assert problems, case
    first = problems[0]
    assert (first.file, first.line, first.field) == ("bad.yaml", line, field), problems
    assert words in first.message
    assert str(first).startswith(f"bad.yaml:{line}:")


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_leaves_the_previous_policies_in_force(tmp_path: Path, case: str) -> None:
    directory = write_sample(tmp_path / "policies")
    holder = PolicyHolder(directory)
    before = holder.current()
    decision = before.decide(ASSETS["alpha"], licensee="Partner", use=Use.ai_training)
    (directory / "zz-bad.yaml").write_text(MALFORMED[case][0], encoding="utf-8")
    with pytest.raises(InvalidPolicy) as err:
        holder.reload()
    assert err.value.detail["file"] == "zz-bad.yaml"  # type: ignore[index]
    assert err.value.detail["line"] == MALFORMED[case][1]  # type: ignore[index]
    assert err.value.message.startswith(f"zz-bad.yaml:{MALFORMED[case][1]}")
    assert holder.current() is before
    again = holder.current().decide(ASSETS["alpha"], licensee="Partner", use=Use.ai_training)
    assert again == decision


def test_duplicate_ids_across_files_name_the_second_file(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    directory.mkdir()
    (directory / "a.yaml").write_text(GOOD, encoding="utf-8")
    (directory / "b.yaml").write_text("# copy\n" + GOOD, encoding="utf-8")
    problems = check_policies(directory)
    assert [(p.file, p.line, p.field) for p in problems] == [("b.yaml", 2, "id")]
    assert "duplicate policy id 'good' (first in a.yaml)" in problems[0].message
    with pytest.raises(InvalidPolicy, match=r"b.yaml:2: id: duplicate policy id"):
        load_policies(directory)


def test_check_reports_every_problem_in_every_file(tmp_path: Path) -> None:
    directory = tmp_path / "p"
    directory.mkdir()
    for i, case in enumerate(("unknown use", "unknown field", "date to before from")):
        (directory / f"{i}.yaml").write_text(MALFORMED[case][0], encoding="utf-8")
    (directory / "ok.yaml").write_text(GOOD.replace("id: good", "id: fine"), encoding="utf-8")
    problems = check_policies(directory)
    assert [p.file for p in problems] == ["0.yaml", "1.yaml", "2.yaml"]
    with pytest.raises(InvalidPolicy) as err:
        load_policies(directory)
    assert len(err.value.detail["errors"]) == 3  # type: ignore[index]


def test_a_missing_directory_is_an_error_not_an_empty_set(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy, match="does not exist"):
        load_policies(tmp_path / "nowhere")


def test_hidden_and_non_yaml_files_are_ignored(tmp_path: Path) -> None:
    directory = write_sample(tmp_path / "p")
    (directory / ".draft.yaml").write_text("not: [valid", encoding="utf-8")
    (directory / "README.md").write_text("# notes", encoding="utf-8")
    assert check_policies(directory) == []
    assert len(load_policies(directory).versions) == 2


def test_versions_carry_the_sha256_of_each_file(tmp_path: Path) -> None:
    import hashlib

    directory = write_sample(tmp_path / "p")
    versions = {v.file: v for v in load_policies(directory).versions}
    text = (directory / "studio-a.yaml").read_bytes()
    assert versions["studio-a.yaml"].sha256 == hashlib.sha256(text).hexdigest()
    assert "a-gamma" in versions["studio-a.yaml"].policy_ids


def test_the_published_schema_describes_the_shipped_fields() -> None:
    schema = json.loads(json.dumps(policy_json_schema()))
    text = json.dumps(schema)
    for word in ("licensor", "licensee", "grants", "constraint_info", "max_resolution",
                 "attribution_required", "model_family", "expires", "territories", "exclude"):
        assert word in text
    refs = set(re.findall(r'"#/\$defs/(\w+)"', text))
    assert refs and refs <= set(schema["$defs"])  # every reference resolves
