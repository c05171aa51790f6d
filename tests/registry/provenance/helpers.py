"""Test helpers for provenance: tampering with signed files, and odd certificates."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib
from pathlib import Path

import av
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from registry.provenance.keys import ROOT_KEY, StudioKeys, _issue_signing_cert
from tests.photos import SHARED_FIXTURES, skimage_photo

C2PA_FIXTURES = SHARED_FIXTURES / "c2pa"
TEST_TRUST_BUNDLE = C2PA_FIXTURES / "trust" / "test_cert_root_bundle.pem"


def png_chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, type, length) of every PNG chunk."""
    out, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        out.append((i, data[i + 4:i + 8], n))
        i += 12 + n
    return out


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def cut_png_manifest(signed_png: bytes) -> bytes:
    """Keep only the first half of the C2PA chunk (caBX), lengths and CRC made consistent."""
    for offset, kind, n in png_chunks(signed_png):
        if kind == b"caBX":
            body = signed_png[offset + 8:offset + 8 + n]
            return signed_png[:offset] + _png_chunk(kind, body[: n // 2]) + \
                signed_png[offset + 12 + n:]
    raise AssertionError("no caBX chunk: not a signed PNG")


def change_jpeg_pixels(signed_jpeg: bytes) -> bytes:
    """Flip bits in the entropy-coded scan data (after the last SOS marker)."""
    sos = signed_jpeg.rfind(b"\xff\xda")
    data = bytearray(signed_jpeg)
    for i in range(sos + 400, sos + 420):
        if data[i] not in (0xFF, 0x00) and data[i] ^ 0x11 not in (0xFF, 0x00):
            data[i] ^= 0x11
    return bytes(data)


def swap_certificate(signed: bytes, keys: StudioKeys) -> bytes:
    """Replace the signing certificate inside the manifest with another one of the same length,
    issued by the same root to a different key."""
    old = keys.signing_cert.public_bytes(serialization.Encoding.DER)
    assert signed.count(old) == 1
    root = x509.load_pem_x509_certificate(keys.root_pem)
    root_key = serialization.load_pem_private_key(
        (keys.root_cert_path.parent / ROOT_KEY).read_bytes(), password=None)
    for _ in range(200):
        new, _ = _issue_signing_cert(root, root_key, "Clearhouse Studio")  # type: ignore[arg-type]
        der = new.public_bytes(serialization.Encoding.DER)
        if len(der) == len(old):
            return signed.replace(old, der)
    raise AssertionError("no certificate of the same length")


def issue_leaf(
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    *,
    subject: x509.Name | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    aki: bool = True,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other")]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    if eku is None:
        eku = [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False)
    cert = builder.sign(root_key, hashes.SHA256())
    issue_leaf.last_key = key  # type: ignore[attr-defined]
    return cert


def webp_photo(tmp_path: Path, name: str = "chelsea.png") -> Path:
    out = tmp_path / (Path(name).stem + ".webp")
    Image.open(skimage_photo(name)).convert("RGB").save(out, "WEBP", quality=85)
    return out


def mp4_clip(tmp_path: Path, name: str = "coffee.png", frames: int = 12) -> Path:
    """A short H.264 clip panning over a real photo."""
    out = tmp_path / "clip.mp4"
    image = np.asarray(Image.open(skimage_photo(name)).convert("RGB"))
    height, width = 240, 320
    with av.open(str(out), mode="w") as box:
        stream = box.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            crop = np.ascontiguousarray(image[i * 4:i * 4 + height, i * 6:i * 6 + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return out


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def photo_bytes(name: str) -> bytes:
    return skimage_photo(name).read_bytes()


def fresh_bytes_io(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)
