"""`clearhouse sign|verify|keys show|keys rotate`, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.photos import skimage_photo
from tests.registry.provenance.helpers import TEST_TRUST_BUNDLE, change_jpeg_pixels
from tests.registry.provenance.test_service import POLICY

runner = CliRunner()


def run(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def env(clearhouse_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> dict[str, str]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "harbor.yaml").write_text(POLICY)
    monkeypatch.setenv("CLEARHOUSE_POLICIES_DIR", str(policies))
    from registry.settings import get_settings

    get_settings.cache_clear()
    assert run("init", "--json").exit_code == 0
    return clearhouse_env


def _import(*names: str) -> list[int]:
    result = run("assets", "import", *(str(skimage_photo(n)) for n in names),
                 "--rightsholder", "Meridian Pictures", "--franchise", "Harbor Lights", "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return [r["asset_id"] for r in json.loads(result.output)["imported"]]  # type: ignore[attr-defined]


def test_sign_with_two_catalog_ingredients_then_verify_json_says_valid_with_everything(
    env: dict[str, str], tmp_path: Path
) -> None:
    ids = _import("coffee.png", "chelsea.png")
    out = tmp_path / "signed.jpg"
    signed = run("sign", str(skimage_photo("rocket.jpg")), "-o", str(out), "--model", "lumen-2",
                 "--prompt", "harbor at night", "--ingredient", str(ids[0]),
                 "--ingredient", str(skimage_photo("chelsea.png")), "--json")
    assert signed.exit_code == 0, signed.output  # type: ignore[attr-defined]
    info = json.loads(signed.output)  # type: ignore[attr-defined]
    assert [i["asset_id"] for i in info["ingredients"]] == ids
    assert info["ingredients"][1]["match"]["signal"] == "sha256"
    verified = run("verify", str(out), "--json")
    assert verified.exit_code == 0, verified.output  # type: ignore[attr-defined]
    data = json.loads(verified.output)  # type: ignore[attr-defined]
    assert {"state", "codes", "signer", "actions", "training_mining", "ingredients",
            "matches"} <= set(data)
    assert data["state"] == "valid" and data["signer"]["trusted"]
    assert data["actions"][0]["softwareAgent"] == "lumen-2"
    assert data["training_mining"]["uses"]["ai_generative_training"]["use"] == "notAllowed"
    assert data["training_mining"]["uses"]["ai_training"]["use"] == "allowed"
    assert sorted(m["asset_id"] for m in data["matches"]) == sorted(ids)


def test_verify_against_a_bundle_without_the_studio_root_is_untrusted_and_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "signed.png"
    assert run("sign", str(skimage_photo("coffee.png")), "-o", str(out),
               "--training", "notAllowed").exit_code == 0  # type: ignore[attr-defined]
    result = run("verify", str(out), "--trust-anchors", str(TEST_TRUST_BUNDLE))
    assert result.exit_code == 3  # type: ignore[attr-defined]
    assert "untrusted" in result.output  # type: ignore[attr-defined]
    assert "does not chain to a configured trust anchor" in result.output  # type: ignore[attr-defined]


def test_a_tampered_file_is_invalid_with_its_code_and_exit_status_2(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "signed.jpg"
    assert run("sign", str(skimage_photo("rocket.jpg")), "-o", str(out)).exit_code == 0  # type: ignore[attr-defined]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(change_jpeg_pixels(out.read_bytes()))
    result = run("verify", str(bad), "--json")
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "assertion.dataHash.mismatch" in json.loads(result.output)["codes"]  # type: ignore[attr-defined]


def test_no_manifest_and_not_media_get_clear_answers(env: dict[str, str], tmp_path: Path) -> None:
    plain = run("verify", str(skimage_photo("rocket.jpg")), "--json")
    assert plain.exit_code == 4  # type: ignore[attr-defined]
    assert json.loads(plain.output)["state"] == "no_manifest"  # type: ignore[attr-defined]
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    result = run("verify", str(text))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert result.output.startswith("error: ")  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]


def test_sign_refuses_bad_requests_with_one_line(env: dict[str, str], tmp_path: Path) -> None:
    photo = str(skimage_photo("rocket.jpg"))
    out = tmp_path / "o.jpg"
    cases = [
        (["--training", "ai_training=maybe"], "unknown permission"),
        (["--training", "painting=allowed"], "unknown use"),
        (["--ingredient", "424242"], "not found"),
        (["--ingredient", "nope.png"], "not a file, an asset id or a sha256"),
    ]
    for extra, expected in cases:
        result = run("sign", photo, "-o", str(out), *extra)
        assert result.exit_code == 1, extra  # type: ignore[attr-defined]
        assert expected in result.output, result.output  # type: ignore[attr-defined]
    assert not out.exists()
    out.write_bytes(b"keep me")
    result = run("sign", photo, "-o", str(out))
    assert result.exit_code == 1 and "exists" in result.output  # type: ignore[attr-defined]
    assert out.read_bytes() == b"keep me"


def test_keys_show_and_rotate(env: dict[str, str]) -> None:
    shown = json.loads(run("keys", "show", "--json").output)  # type: ignore[attr-defined]
    assert shown["signing"]["issuer"] == shown["root"]["subject"]
    assert shown["retired"] == []
    rotated = run("keys", "rotate", "--json")
    assert rotated.exit_code == 0, rotated.output  # type: ignore[attr-defined]
    after = json.loads(run("keys", "show", "--json").output)  # type: ignore[attr-defined]
    assert after["signing"]["serial"] != shown["signing"]["serial"]
    assert after["root"] == shown["root"]
    assert [c["serial"] for c in after["retired"]] == [shown["signing"]["serial"]]
    assert "show" in run("keys", "--help").output  # type: ignore[attr-defined]


def test_verify_says_whose_image_a_stripped_copy_is_and_what_its_manifest_said(
    env: dict[str, str], tmp_path: Path
) -> None:
    import io

    from PIL import Image

    ids = _import("chelsea.png")
    out = tmp_path / "signed.jpg"
    signed = run("sign", str(skimage_photo("rocket.jpg")), "-o", str(out), "--model", "lumen-2",
                 "--ingredient", str(ids[0]), "--json")
    assert signed.exit_code == 0, signed.output  # type: ignore[attr-defined]
    manifest_id = json.loads(signed.output)["manifest_id"]  # type: ignore[attr-defined]
    stripped = tmp_path / "reposted.webp"
    image = Image.open(io.BytesIO(out.read_bytes())).convert("RGB")
    image.resize((image.width // 2, image.height // 2)).save(stripped, "WEBP")
    verified = run("verify", str(stripped), "--json")
    assert verified.exit_code == 4, verified.output  # type: ignore[attr-defined]
    data = json.loads(verified.output)  # type: ignore[attr-defined]
    assert data["state"] == "no_manifest"
    rec = data["recovered"]
    assert rec["manifest_id"] == manifest_id
    assert rec["validation"]["state"] == "valid"
    assert rec["ingredients"][0]["asset"]["franchise"] == "Harbor Lights"
    assert rec["training_mining"]["uses"]["ai_generative_training"]["use"] == "notAllowed"
    text = run("verify", str(stripped))
    assert text.exit_code == 4
    output = " ".join(text.output.split())  # type: ignore[attr-defined]
    assert "this is Clearhouse Studio's generated image signed on" in output
    assert "its manifest was removed" in output
    assert "Harbor Lights, Meridian Pictures" in output
    never = run("verify", str(skimage_photo("horse.png")), "--json")
    assert never.exit_code == 4
    assert json.loads(never.output)["recovered"] is None  # type: ignore[attr-defined]


def test_sign_without_ingredients_states_the_reservation_unless_opted_out(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "plain.jpg"
    signed = run("sign", str(skimage_photo("rocket.jpg")), "-o", str(out), "--json")
    info = json.loads(signed.output)  # type: ignore[attr-defined]
    assert {u: p["use"] for u, p in info["training_mining"].items()} == dict.fromkeys(
        ("ai_training", "ai_generative_training", "ai_inference", "data_mining"), "notAllowed")
    opted = run("sign", str(skimage_photo("rocket.jpg")), "-o", str(tmp_path / "o.jpg"),
                "--no-training-mining", "--json")
    assert json.loads(opted.output)["training_mining"] == {}  # type: ignore[attr-defined]
    data = json.loads(run("verify", str(tmp_path / "o.jpg"), "--json").output)  # type: ignore[attr-defined]
    assert data["state"] == "valid" and data["training_mining"] is None
