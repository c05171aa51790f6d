"""Hardening (issue 13): what an attacker or a careless client can make the server spend, and the
malformed input that used to answer 500. One test (or more) per finding of the issue, each on
both backends; the streaming ones run a real uvicorn server on loopback."""

from __future__ import annotations

import functools
import io
import json
import os
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.limits import MAX_PLAIN_BODY_BYTES
from registry import clearance
from registry.access import Role, create_api_key
from registry.clearance.datasets import MAX_SHARDS, open_dataset
from registry.db import session_scope
from registry.errors import InvalidInput
from registry.settings import Settings
from tests.photos import skimage_photo
from tests.registry.clearance import scenario

MIB = 1024 * 1024


@pytest.fixture
def settings(home: Path, db_url: str, tmp_path: Path) -> Settings:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    return Settings(home=home, database_url=db_url, max_upload_bytes=2 * MIB,
                    embedded_worker=True,  # the API runs the jobs it accepts
                    allowed_roots=[allowed],
                    policies_dir=scenario.write_policies(tmp_path / "policies"))


class LiveServer:
    def __init__(self, url: str, port: int, keys: dict[str, dict[str, str]]) -> None:
        self.url, self.port, self.keys = url, port, keys


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    """The app under uvicorn on a loopback port (real HTTP: chunked bodies, sockets)."""
    app = create_app(settings)
    keys = {}
    with session_scope(app.state.session_factory) as session:
        for role in Role:
            _, plain = create_api_key(session, name=f"live-{role.value}", role=role.value)
            keys[role.value] = {"Authorization": f"Bearer {plain}"}
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", port, keys)
    server.should_exit = True
    thread.join(10)
    app.state.engine.dispose()


MULTIPART_HEAD = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
                  b"Content-Type: image/jpeg\r\n\r\n")


def _chunked_request(port: int, path: str, headers: dict[str, str], *, send_bytes: int,
                     content_type: str) -> str:
    """Open a chunked POST, stream `send_bytes` of body without ever ending it, and return the
    status line the server answers with (a server that waits for the whole body times out)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked",
             f"Content-Type: {content_type}"] + [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def stream() -> None:
        chunk = b"0" * 65536
        head = MULTIPART_HEAD if content_type.startswith("multipart/") else b"["
        sent = 0
        try:
            sock.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
            while sent < send_bytes:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass  # the server closed the connection: what we want

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        answer = sock.recv(4096).decode("latin-1")
    except TimeoutError:
        answer = "TIMEOUT"
    finally:
        sock.close()
        sender.join(5)
    return answer.split("\r\n", 1)[0]


# --- finding 1: bodies are limited while they stream, and the key comes first ----------------


def test_a_chunked_body_without_a_key_is_refused_before_it_is_read(live: LiveServer) -> None:
    status = _chunked_request(live.port, "/v1/assets", {}, send_bytes=64 * MIB,
                              content_type="multipart/form-data; boundary=x")
    assert status.startswith("HTTP/1.1 401"), status
    status = _chunked_request(live.port, "/v1/decisions", {"Authorization": "Bearer ch_x_y"},
                              send_bytes=64 * MIB, content_type="application/json")
    assert status.startswith("HTTP/1.1 401"), status


def test_a_chunked_body_over_the_limit_is_cut_off_while_it_streams(live: LiveServer) -> None:
    legal = live.keys["legal"]
    status = _chunked_request(live.port, "/v1/assets", legal, send_bytes=64 * MIB,
                              content_type="multipart/form-data; boundary=x")
    assert status.startswith("HTTP/1.1 413"), status
    status = _chunked_request(live.port, "/v1/decisions", legal, send_bytes=64 * MIB,
                              content_type="application/json")
    assert status.startswith("HTTP/1.1 413"), status


def test_a_large_json_body_is_refused_with_413_and_our_error_shape(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"use": "ai_training", "assets": ['
        for _ in range(MAX_PLAIN_BODY_BYTES // 8 + 10):
            yield b"1234567,"
        yield b"1]}"

    res = client.post("/v1/decisions", headers={**keys["legal"],
                                                "Content-Type": "application/json"},
                      content=body())
    assert res.status_code == 413, res.text
    assert res.json()["error"]["code"] == "payload_too_large"


# --- finding 2: shard patterns ------------------------------------------------------------------


def test_a_huge_shard_range_is_refused_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInput, match=f"at most {MAX_SHARDS}"):
        open_dataset(tmp_path / "shard-{0..3000000}.tar", allowed_roots=[tmp_path])
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="shard not found"):  # lazily: stops at the first
        open_dataset(tmp_path / "shard-{00000..99999}.tar", allowed_roots=[tmp_path])
    assert time.monotonic() - started < 1.0


def test_a_huge_shard_range_over_http_is_a_422(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings
) -> None:
    path = settings.allowed_roots[0] / "s-{0..3000000}.tar"
    res = client.post("/v1/clearances", headers=keys["ml"],
                      json={"dataset": str(path), "use": "ai_training", "licensee": "x"})
    assert res.status_code == 422, res.text
    assert "at most" in res.json()["error"]["message"]


# --- finding 3: poison jobs end, and jobs can be cancelled --------------------------------------


def _photo_bytes(name: str = "astronaut.png", size: int = 128) -> bytes:
    image = Image.open(skimage_photo(name)).convert("RGB")
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _tar_with_duplicate_members() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, photo in (("a.jpg", "astronaut.png"), ("a.jpg", "coffee.png"),
                            ("b.jpg", "camera.png")):
            data = _photo_bytes(photo)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _zip_with_duplicate_members() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("a.jpg", _photo_bytes("astronaut.png"))
        archive.writestr("a.jpg", _photo_bytes("coffee.png"))
        archive.writestr("b.jpg", _photo_bytes("camera.png"))
    return out.getvalue()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_an_archive_with_a_repeated_member_name_finishes_with_every_member(
    client: TestClient, keys: dict[str, dict[str, str]], kind: str
) -> None:
    data = _tar_with_duplicate_members() if kind == "tar" else _zip_with_duplicate_members()
    res = client.post("/v1/clearances/archive", headers=keys["ml"],
                      data={"use": "ai_training", "licensee": "Lumen AI"},
                      files={"file": (f"dup.{kind}", data)})
    assert res.status_code == 202, res.text
    job = client.get(f"/v1/clearances/{res.json()['id']}", headers=keys["ml"]).json()
    assert job["status"] == "finished", job
    assert job["done_items"] == job["total_items"] == 3
    items = client.get(f"/v1/clearances/{job['id']}/items", headers=keys["ml"]).json()
    assert sorted(i["key"] for i in items) == ["a.jpg", "a.jpg#2", "b.jpg"]
    assert len({i["sha256"] for i in items}) == 3  # each copy read its own bytes
    # The uploaded archive is dropped once its job has ended (finding 10).
    assert not list((client.app.state.settings.jobs_dir / "uploads").glob("*"))


def test_a_job_that_cannot_go_on_ends_failed_with_its_reason(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings
) -> None:
    folder = settings.allowed_roots[0] / "gone"
    folder.mkdir()
    manifest = folder / "list.jsonl"
    manifest.write_text('{"path": "a.jpg"}\n')
    with session_scope(client.app.state.session_factory) as session:
        job = clearance.submit_job(session, dataset=open_dataset(manifest), use="ai_training",
                                   licensee="x", owner="t")
        job_id = job.id
    manifest.write_text("not json\n")  # the dataset became unreadable after submission
    from api.worker import run_accepted_job

    run_accepted_job(client.app.state.session_factory, settings, job_id)
    data = client.get(f"/v1/clearances/{job_id}", headers=keys["legal"]).json()
    assert data["status"] == "failed" and "invalid JSON" in data["error"]
    with session_scope(client.app.state.session_factory) as session:
        assert job_id not in [j.id for j in clearance.unfinished_jobs(session)]


def test_a_pending_job_is_cancelled_over_http_and_not_resumed(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings
) -> None:
    folder = settings.allowed_roots[0] / "pending"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(_photo_bytes())
    with session_scope(client.app.state.session_factory) as session:
        _, plain = create_api_key(session, name="other-ml", role="ml")
        job_id = clearance.submit_job(session, dataset=open_dataset(folder), use="ai_training",
                                      licensee="x", owner="t").id
    other = {"Authorization": f"Bearer {plain}"}
    assert client.post(f"/v1/clearances/{job_id}/cancel", headers=other).status_code == 403
    res = client.post(f"/v1/clearances/{job_id}/cancel", headers=keys["legal"])
    assert res.status_code == 200, res.text
    assert res.json()["status"] == "cancelled"
    again = client.post(f"/v1/clearances/{job_id}/cancel", headers=keys["legal"])
    assert again.status_code == 409
    with session_scope(client.app.state.session_factory) as session:
        assert job_id not in [j.id for j in clearance.unfinished_jobs(session)]
        actions = [e.action for e in __import__("registry.audit", fromlist=["events"]).events(
            session, subject=f"clearance:{job_id}")]
    assert "clearance.cancel" in actions


# --- finding 4: identical uploads at the same moment --------------------------------------------


def test_concurrent_identical_uploads_answer_201_once_and_200_existing(
    live: LiveServer,
) -> None:
    legal = live.keys["legal"]
    httpx.post(f"{live.url}/v1/rightsholders", headers=legal, json={"name": "Harbor"},
               timeout=30).raise_for_status()
    data = _photo_bytes("chelsea.png", 256)

    def upload(_: int) -> tuple[int, str]:
        res = httpx.post(f"{live.url}/v1/assets", headers=legal, timeout=120,
                         data={"rightsholder": "Harbor"},
                         files={"file": ("same.jpg", data, "image/jpeg")})
        return res.status_code, res.text

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(upload, range(12)))
    codes = sorted(code for code, _ in answers)
    assert codes == [200] * 11 + [201], answers
    statuses = {json.loads(text)["status"] for code, text in answers}
    assert statuses == {"created", "existing"}
    assets = httpx.get(f"{live.url}/v1/assets", headers=legal, timeout=30).json()
    assert assets["total"] == 1


# --- finding 5: malformed input answers 4xx, never 500 ------------------------------------------

HUGE = str(2**63)
HUGER = "9" * 30


def test_ids_and_paging_numbers_out_of_range_answer_4xx(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    legal = keys["legal"]
    paths = [
        f"/v1/rightsholders/{HUGE}", f"/v1/franchises/{HUGER}", f"/v1/licences/{HUGE}",
        f"/v1/assets/{HUGE}", f"/v1/assets/{HUGER}", "/v1/assets/²", "/v1/assets/١٢",
        f"/v1/assets/{HUGE}/thumbnail", f"/v1/assets/{HUGE}/content",
        f"/v1/clearances/{HUGE}", f"/v1/clearances/{HUGE}/report",
        f"/v1/clearances/{HUGE}/items", f"/v1/clearances/{HUGE}/certificate",
        f"/v1/assets?offset={HUGE}", f"/v1/assets?franchise_id={HUGE}",
        f"/v1/assets?rightsholder_id={HUGER}", f"/v1/franchises?rightsholder_id={HUGE}",
        f"/v1/clearances?limit={HUGE}", "/v1/assets?q=" + "x" * 50_000,
    ]
    for path in paths:
        res = client.get(path, headers=legal)
        assert 400 <= res.status_code < 500, (path, res.status_code, res.text[:200])
    posts = [
        (f"/v1/clearances/{HUGE}/items/1/review", {"decision": "allowed", "comment": "x"}),
        (f"/v1/clearances/1/items/{HUGE}/review", {"decision": "allowed", "comment": "x"}),
        (f"/v1/clearances/{HUGE}/certificate", None),
        (f"/v1/clearances/{HUGE}/cancel", None),
        ("/v1/decisions", {"use": "ai_training", "licensee": "x", "assets": [HUGE, "²"]}),
    ]
    for path, body in posts:
        res = client.post(path, headers=legal, json=body)
        assert 400 <= res.status_code < 500, (path, res.status_code, res.text[:200])


def test_sign_with_an_ingredient_id_out_of_range_is_a_4xx(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    res = client.post("/v1/sign", headers=keys["partner"],
                      data={"ingredient": [HUGE]},
                      files={"file": ("gen.jpg", _photo_bytes(), "image/jpeg")})
    assert 400 <= res.status_code < 500, res.text
    res = client.post("/v1/sign", headers=keys["partner"], data={"ingredient": ["²"]},
                      files={"file": ("gen.jpg", _photo_bytes(), "image/jpeg")})
    assert 400 <= res.status_code < 500, res.text


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_json_bodies_are_refused(
    client: TestClient, keys: dict[str, dict[str, str]], constant: str
) -> None:
    for path in ("/v1/certificates/verify", "/v1/decisions", "/v1/rightsholders"):
        res = client.post(path, headers={**keys["admin"], "Content-Type": "application/json"},
                          content=f'{{"name": "n", "payload": {constant}, "x": [{constant}]}}')
        assert res.status_code == 400, (path, res.text)
        assert res.json()["error"]["code"] == "bad_json"


def test_a_dataset_path_with_a_component_over_255_bytes_is_a_422(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings
) -> None:
    path = settings.allowed_roots[0] / ("x" * 300) / "data"
    res = client.post("/v1/clearances", headers=keys["ml"],
                      json={"dataset": str(path), "use": "ai_training", "licensee": "x"})
    assert res.status_code == 422, res.text


def test_a_path_outside_the_roots_is_refused_without_saying_whether_it_exists(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    answers = []
    for path in ("/etc/passwd", "/etc/no-such-file-here"):
        res = client.post("/v1/clearances", headers=keys["ml"],
                          json={"dataset": path, "use": "ai_training", "licensee": "x"})
        assert res.status_code == 422
        answers.append(res.json()["error"]["message"].replace(path, "PATH"))
    assert answers[0] == answers[1]


# --- finding 6: small files that cost a lot to decode -------------------------------------------


@functools.cache
def _flat_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 128).save(out, "PNG", optimize=True)
    return out.getvalue()


def test_a_tiny_png_of_huge_dimensions_is_refused_as_a_query(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings
) -> None:
    data = _flat_png(9400, 9400)
    assert len(data) < 200_000 and settings.max_query_pixels < 9400 * 9400
    res = client.post("/v1/match", headers=keys["partner"],
                      files={"files": ("big.png", data, "image/png")})
    assert res.status_code == 200, res.text
    error = res.json()["results"][0]["error"]
    assert error and "pixels is over the limit" in error
    res = client.post("/v1/verify", headers=keys["partner"],
                      files={"file": ("big.png", data, "image/png")})
    assert res.status_code == 413, res.text


@pytest.mark.slow
def test_the_documented_pixel_limit_is_the_enforced_one(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """100 MP is documented; Pillow's own warning used to refuse anything over 89.5 MP."""
    legal = keys["legal"]
    client.post("/v1/rightsholders", headers=legal, json={"name": "Harbor"})
    data = _flat_png(9500, 9500)  # 90.25 MP
    res = client.post("/v1/assets", headers=legal, data={"rightsholder": "Harbor"},
                      files={"file": ("wide.png", data, "image/png")})
    assert res.status_code == 201, res.text
    asset_id = res.json()["asset"]["id"]
    first = client.get(f"/v1/assets/{asset_id}/thumbnail?size=64", headers=legal)
    assert first.status_code == 200
    # A thumbnail is decoded once per size, then served from the cache.
    cached = list((client.app.state.settings.thumbnails_dir).glob("*-64.jpg"))
    assert len(cached) == 1
    assert oct(cached[0].stat().st_mode & 0o777) == "0o600"
    again = client.get(f"/v1/assets/{asset_id}/thumbnail?size=64", headers=legal)
    assert again.content == first.content


# --- finding 7: worker processes are capped ----------------------------------------------------


def test_a_job_never_gets_more_workers_than_the_server_allows(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    res = client.post("/v1/clearances/archive", headers=keys["ml"],
                      data={"use": "ai_training", "licensee": "x", "workers": "64"},
                      files={"file": ("one.tar", _tar_with_duplicate_members())})
    assert res.status_code == 202, res.text
    assert res.json()["workers"] <= min(client.app.state.settings.max_workers,
                                        os.cpu_count() or 1)


# --- finding 8: archive bombs -------------------------------------------------------------------


def _zip_bomb(unpacked: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open("zeros.jpg", "w", force_zip64=True) as member:
        block = b"\0" * MIB
        for _ in range(unpacked // MIB):
            member.write(block)
    return out.getvalue()


def _tar_gz_bomb(unpacked: int) -> bytes:
    out = io.BytesIO()

    class Zeros:
        def __init__(self, size: int) -> None:
            self.left = size

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            self.left -= n
            return b"\0" * n

    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=9) as tar:
        info = tarfile.TarInfo("zeros.jpg")
        info.size = unpacked
        tar.addfile(info, Zeros(unpacked))
    return out.getvalue()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_an_archive_bomb_is_refused_with_a_reason(
    client: TestClient, keys: dict[str, dict[str, str]], settings: Settings, kind: str
) -> None:
    data = _zip_bomb(200 * MIB) if kind == "zip" else _tar_gz_bomb(200 * MIB)
    assert len(data) < settings.max_upload_bytes
    started = time.monotonic()
    res = client.post("/v1/clearances/archive", headers=keys["ml"],
                      data={"use": "ai_training", "licensee": "x"},
                      files={"file": (f"bomb.{kind}", data)})
    assert res.status_code == 422, res.text
    assert "archive bomb" in res.json()["error"]["message"]
    assert time.monotonic() - started < 5
    assert not list((settings.jobs_dir / "uploads").glob("*/*"))  # the upload is not kept
    with session_scope(client.app.state.session_factory) as session:
        assert clearance.list_jobs(session) == []


def test_an_archive_with_too_many_members_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.clearance import datasets

    monkeypatch.setattr(datasets, "MAX_ARCHIVE_MEMBERS", 10)
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(11):
            archive.writestr(f"{n}.jpg", b"x")
    with pytest.raises(InvalidInput, match="more than 10 members"):
        clearance.check_archive(path)
