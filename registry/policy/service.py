"""Loading policies into a PolicySet, recording their versions, and keeping the one in force.

`load_policies(dir)` is all-or-nothing. `PolicyHolder` keeps the PolicySet in force for a
long-running process (the API): a failed reload raises and leaves the previous set in force.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.policy.decision import PolicySet
from registry.policy.loader import PolicyProblem, raise_for, read_policy_dir
from registry.policy.models import PolicyFileVersion


def check_policies(directory: Path) -> list[PolicyProblem]:
    """Every problem in the policy files under `directory` (empty: all valid)."""
    _, problems = read_policy_dir(directory)
    return problems


def load_policies(directory: Path) -> PolicySet:
    """Validate and compile every policy file under `directory`.

    Raises InvalidPolicy (message `file:line: field: what`, every problem in `detail["errors"]`)
    if any file is invalid; nothing is loaded then.
    """
    files, problems = read_policy_dir(directory)
    raise_for(problems)
    return PolicySet(files)


def record_policy_versions(session: Session, policy_set: PolicySet) -> list[PolicyFileVersion]:
    """Store each loaded file's text, sha256 and load time (once per file and sha256).

    Safe when several processes record the same files at once (two workers starting jobs): each
    insert runs in a savepoint, and the one that loses the unique (file, sha256) race reads the
    winner's row instead of failing its job."""
    rows = []
    for f in policy_set.files:
        v = f.version
        found = select(PolicyFileVersion).where(
            PolicyFileVersion.file == v.file, PolicyFileVersion.sha256 == v.sha256)
        row = session.scalar(found)
        if row is None:
            row = PolicyFileVersion(
                file=v.file,
                sha256=v.sha256,
                policy_ids=list(v.policy_ids),
                content=f.content,
                loaded_at=v.loaded_at,
            )
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                row = session.scalars(found).one()  # another process recorded it first
        rows.append(row)
    session.flush()
    return rows


def list_policy_versions(session: Session, *, file: str | None = None) -> list[PolicyFileVersion]:
    """Every recorded policy file version, newest first."""
    query = select(PolicyFileVersion).order_by(
        PolicyFileVersion.loaded_at.desc(), PolicyFileVersion.id.desc()
    )
    if file is not None:
        query = query.where(PolicyFileVersion.file == file)
    return list(session.scalars(query))


def find_policy_version(session: Session, sha256: str) -> PolicyFileVersion | None:
    return session.scalar(select(PolicyFileVersion).where(PolicyFileVersion.sha256 == sha256))


class PolicyHolder:
    """The PolicySet in force for one process, swapped only by a reload that validates."""

    def __init__(self, directory: Path, policy_set: PolicySet | None = None) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._set = policy_set

    def current(self) -> PolicySet:
        """The set in force; loads the directory the first time (raising if it is invalid)."""
        with self._lock:
            if self._set is None:
                self._set = load_policies(self.directory)
            return self._set

    def reload(self) -> PolicySet:
        """Load the directory again; on any error the previous set stays in force."""
        fresh = load_policies(self.directory)
        with self._lock:
            self._set = fresh
        return fresh
