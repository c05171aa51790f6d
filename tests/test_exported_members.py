"""Each core package exposes exactly what it means to (its front door, STYLE.md)."""

from __future__ import annotations

import registry.access
import registry.catalog
import registry.media


def test_catalog_front_door() -> None:
    assert {"Asset", "BlobStore", "register_asset", "import_paths", "get_asset",
            "list_assets"} <= set(registry.catalog.__all__)
    for name in registry.catalog.__all__:
        assert hasattr(registry.catalog, name)


def test_media_and_access_front_doors() -> None:
    assert set(registry.media.__all__) == {
        "IMAGE_FORMATS", "Frame", "MediaInfo", "Probed", "load_image", "probe", "sample_frames"}
    assert set(registry.access.__all__) == {
        "ApiKey", "ConsoleSession", "Role", "authenticate", "create_api_key", "end_session",
        "find_session", "list_api_keys", "require_role", "revoke_api_key", "start_session"}
