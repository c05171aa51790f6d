from __future__ import annotations

from pathlib import Path

import pytest

from registry.provenance.keys import StudioKeys, ensure_studio_keys


@pytest.fixture(scope="module")
def studio_keys(tmp_path_factory: pytest.TempPathFactory) -> StudioKeys:
    return ensure_studio_keys(tmp_path_factory.mktemp("studio") / "keys")


@pytest.fixture
def other_keys(tmp_path: Path) -> StudioKeys:
    """Another studio: its root is not ours."""
    return ensure_studio_keys(tmp_path / "other-keys", organisation="Other Studio")
