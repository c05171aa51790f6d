"""The manifests the repository keeps read Valid in an independent reader: @trustnxt/c2pa-ts (a
separate TypeScript implementation from npm, offline; installed by `make node-deps`)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy.orm import Session

from registry.provenance.keys import StudioKeys
from registry.provenance.repository import get_manifest_record
from registry.provenance.service import sign_generated
from tests.photos import skimage_photo

JS = Path(__file__).resolve().parents[2] / "js"
SCRIPT = JS / "c2pa_ts_check.mjs"


def c2pa_ts(asset: Path, store: Path | None = None) -> dict[str, object]:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "@trustnxt" / "c2pa-ts").is_dir():
        pytest.skip("!!! node or tests/js/node_modules missing: run `make node-deps` !!!")
    args = [node, str(SCRIPT), str(asset)] + ([str(store)] if store else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("photo", ["rocket.jpg", "chelsea.png"])
def test_the_stored_manifest_reads_valid_in_c2pa_ts(
        session: Session, studio_keys: StudioKeys, tmp_path: Path, photo: str) -> None:
    signed = sign_generated(session, skimage_photo(photo), keys=studio_keys, name=photo,
                            model="lumen-diffusion-2").signed
    record = get_manifest_record(session, str(signed.manifest_label))
    asset = tmp_path / f"signed{Path(photo).suffix}"
    asset.write_bytes(signed.data)
    store = tmp_path / "stored.c2pa"
    store.write_bytes(record.store)
    result = c2pa_ts(asset, store)
    assert result["isValid"] is True, result
    assert result["codes"] == []
    assert result["label"] == record.manifest_id
    assert result["sameAsEmbedded"] is True
    assert "c2pa.soft-binding" in result["assertions"]  # type: ignore[operator]
    # The check is real: against a re-encoded copy the same store fails its hard binding.
    stripped = tmp_path / "stripped.png"
    Image.open(io.BytesIO(signed.data)).convert("RGB").save(stripped, "PNG")
    assert c2pa_ts(stripped, store)["isValid"] is False
