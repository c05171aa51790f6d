"""Signing and verification time per image: the registry next to plain c2pa-python, same run.

Baselines ("plain"): the c2pa-python calls a script would make by hand, with the same settings
(thumbnail off, offline, the same trust anchor) and the same manifest: `Builder.sign` to bytes, and
`Reader` + `json()` + `get_validation_state()`.

Registry: `sign_media` (reads the bytes, sniffs the format, runs the safe loader's full decode
`probe` on the untrusted input, builds the manifest, signs) and `verify_media` (sniffs, reads and
validates, maps the codes, validates training-mining entries). The safe-loader decode is shown on
its own because it is most of the difference and is a choice (corrupt input fails before signing).
Catalog matching on verify (sha256 + fingerprints) is not included: it is the fingerprint area's
cost and is measured in its own bench.

    .venv/bin/python bench/bench_provenance.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import c2pa  # noqa: E402

from registry.media import probe  # noqa: E402
from registry.provenance import (  # noqa: E402
    Permission,
    UsePermission,
    ensure_studio_keys,
    sign_media,
    verify_media,
)
from registry.provenance.c2pa_adapter import builder_settings, reader_settings  # noqa: E402
from registry.provenance.sign import build_manifest  # noqa: E402
from registry.provenance.verify import sniff_media_type  # noqa: E402
from tests.photos import skimage_photo  # noqa: E402

PHOTOS = ["rocket.jpg", "hubble_deep_field.jpg", "astronaut.png", "coffee.png", "chelsea.png",
          "motorcycle_left.png"]
TRAINING = {u: UsePermission(u, Permission.notAllowed)
            for u in ("ai_training", "ai_generative_training", "ai_inference", "data_mining")}


def medians_ms(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median time of each function, run in turn (a, b, c, a, b, c, ...) so that a busy machine
    slows them alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) * 1000 for t in times]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    keys = ensure_studio_keys(Path(tempfile.mkdtemp()) / "keys")
    chain, key, anchors = keys.chain_pem, keys.key_pem, keys.root_pem
    print(f"{c2pa.__version__=} sdk={c2pa.sdk_version()}; median of {args.repeat} runs per image")
    header = (f"{'image':24} {'MP':>5} | {'sign plain':>10} {'sign reg':>9} {'ratio':>6} "
              f"{'probe':>7} | {'verify plain':>12} {'verify reg':>10} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    rows = []
    for name in PHOTOS:
        data = skimage_photo(name).read_bytes()
        media_type = sniff_media_type(data) or ""
        info = probe(data)
        manifest = build_manifest(title=name, media_type=media_type, model="bench-model",
                                  prompt="bench", training=TRAINING)

        def plain_sign(data: bytes = data, media_type: str = media_type,
                       manifest: dict[str, object] = manifest) -> bytes:
            ctx = c2pa.Context.from_dict(builder_settings())
            signer = c2pa.Signer.from_info(
                c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
            with c2pa.Builder(manifest, context=ctx) as builder:
                out = io.BytesIO()
                builder.sign(signer, media_type, io.BytesIO(data), out)
            ctx.close()
            return out.getvalue()

        signed = plain_sign()

        def plain_verify(signed: bytes = signed, media_type: str = media_type) -> str | None:
            ctx = c2pa.Context.from_dict(reader_settings(anchors_pem=anchors))
            with c2pa.Reader(media_type, io.BytesIO(signed), None, ctx) as reader:
                reader.json()
                state = reader.get_validation_state()
            ctx.close()
            return state

        assert plain_verify() == "Trusted"
        assert verify_media(signed, anchors_pem=anchors).state == "valid"
        def reg_sign(data: bytes = data) -> object:
            return sign_media(data, keys=keys, model="bench-model", prompt="bench",
                              training=TRAINING)

        def reg_verify(signed: bytes = signed) -> object:
            return verify_media(signed, anchors_pem=anchors)

        def decode(data: bytes = data) -> object:
            return probe(data)

        names = ["sign_plain", "sign_reg", "probe", "verify_plain", "verify_reg"]
        fns = [plain_sign, reg_sign, decode, plain_verify, reg_verify]
        row = dict(zip(names, medians_ms(fns, args.repeat), strict=True))
        rows.append(row)
        mp = info.width * info.height / 1e6
        print(f"{name:24} {mp:5.2f} | {row['sign_plain']:8.2f}ms {row['sign_reg']:7.2f}ms "
              f"{row['sign_reg'] / row['sign_plain']:5.2f}x {row['probe']:5.2f}ms | "
              f"{row['verify_plain']:10.2f}ms {row['verify_reg']:8.2f}ms "
              f"{row['verify_reg'] / row['verify_plain']:5.2f}x")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print("-" * len(header))
    print(f"{'median over images':30} | {med['sign_plain']:8.2f}ms {med['sign_reg']:7.2f}ms "
          f"{med['sign_reg'] / med['sign_plain']:5.2f}x {med['probe']:5.2f}ms | "
          f"{med['verify_plain']:10.2f}ms {med['verify_reg']:8.2f}ms "
          f"{med['verify_reg'] / med['verify_plain']:5.2f}x")
    overhead = med["sign_reg"] - med["probe"] - med["sign_plain"]
    print(f"sign: registry minus plain minus the safe-loader decode = {overhead:.2f} ms per image")


if __name__ == "__main__":
    main()
