"""Signal types: the shared contract, and PDQ against the published reference hashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image

from registry.errors import InvalidFingerprint, UnknownSignal
from registry.fingerprint import get_signal_type, hamming, installed_signal_types
from registry.fingerprint.base import DIHEDRAL_NAMES, SignalType
from registry.fingerprint.features import work_image
from registry.fingerprint.pdq import Pdq
from registry.fingerprint.phash import PHash
from registry.media import load_image
from tests.photos import SHARED_FIXTURES, skimage_photo

PDQ_DIR = SHARED_FIXTURES / "pdq"
EXPECTED = json.loads((PDQ_DIR / "expected.json").read_text()) if PDQ_DIR.exists() else {}
# Porting tolerance per published set (fixtures/pdq/SOURCES.md): the reference allows 10 bits
# at quality >= 80 against the C++ tool; the Python port's own test allows 16, and the sets
# disagree among themselves by up to 12; Pillow decoding reproduces the Java hashes exactly.
TOLERANCE_BITS = {"cpp_java_reference_tools": 10, "java_unit_test": 0,
                  "python_port_unit_test": 12, "python_port_readme": 12}
# Measured maximum over all shipped references with Pillow decoding (recorded in docs).
MEASURED_MAX_BITS = {"cpp_java_reference_tools": 8, "java_unit_test": 0,
                     "python_port_unit_test": 12, "python_port_readme": 8}


class SignalContract:
    SIGNAL: ClassVar[type[SignalType]]

    def test_hash_has_the_declared_length_and_matches_itself(self) -> None:
        image = load_image(skimage_photo("astronaut.png"))
        value = self.SIGNAL.compute(image)
        assert len(value.bits) * 8 == self.SIGNAL.bits
        assert self.SIGNAL.compare(value.bits, value.bits).matched
        assert self.SIGNAL.validate(value.hex) == value.bits

    def test_different_photos_do_not_match(self) -> None:
        a = self.SIGNAL.compute(load_image(skimage_photo("astronaut.png")))
        b = self.SIGNAL.compute(load_image(skimage_photo("coffee.png")))
        assert not self.SIGNAL.compare(a.bits, b.bits).matched

    def test_resized_copy_matches(self) -> None:
        image = load_image(skimage_photo("chelsea.png"))
        small = image.resize((image.width // 2, image.height // 2))
        assert self.SIGNAL.compare(self.SIGNAL.compute(image).bits,
                                   self.SIGNAL.compute(small).bits).matched

    def test_dihedral_variants_cover_a_flip_and_a_rotation(self) -> None:
        image = load_image(skimage_photo("rocket.jpg"))
        variants = self.SIGNAL.compute_dihedral(image)
        assert len(variants) == len(DIHEDRAL_NAMES) == 8
        for name, transpose in (("rot90", Image.Transpose.ROTATE_90),
                                ("flip_h", Image.Transpose.FLIP_LEFT_RIGHT)):
            query = self.SIGNAL.compute(image.transpose(transpose))
            d = hamming(query.bits, variants[DIHEDRAL_NAMES.index(name)].bits)
            assert d <= self.SIGNAL.match_threshold, (name, d)

    @pytest.mark.parametrize("bad", ["zz", "abcd", ""])
    def test_malformed_hex_is_refused(self, bad: str) -> None:
        with pytest.raises(InvalidFingerprint):
            self.SIGNAL.validate(bad)


class TestPdq(SignalContract):
    SIGNAL = Pdq


class TestPHash(SignalContract):
    SIGNAL = PHash


def test_signal_registry_knows_every_signal_by_its_stored_name() -> None:
    assert [s.name for s in installed_signal_types()] == ["pdq", "phash"]
    assert get_signal_type("pdq") is Pdq
    with pytest.raises(UnknownSignal):
        get_signal_type("md5")


def _reference_cases() -> list[tuple[str, str, str, int | None]]:
    cases = []
    for name, entry in EXPECTED.get("images", {}).items():
        for ref in entry["references"]:
            cases.append((name, ref["source"], ref["hash"], ref.get("quality")))
    return cases


@pytest.mark.skipif(not EXPECTED, reason="shared PDQ fixtures missing")
@pytest.mark.parametrize(("image", "source", "expected", "quality"), _reference_cases(),
                         ids=lambda v: str(v)[:24])
def test_pdq_is_within_the_porting_tolerance_of_each_published_hash(
    image: str, source: str, expected: str, quality: int | None
) -> None:
    value = Pdq.compute(load_image(PDQ_DIR / image))
    distance = hamming(value.bits, bytes.fromhex(expected))
    assert distance <= TOLERANCE_BITS[source]
    assert distance <= MEASURED_MAX_BITS[source]


@pytest.mark.skipif(not EXPECTED, reason="shared PDQ fixtures missing")
def test_pdq_quality_cut_off_drops_the_flat_reference_images() -> None:
    qualities = {name: Pdq.compute(load_image(PDQ_DIR / name)).quality
                 for name in EXPECTED["images"]}
    low = {name for name, q in qualities.items() if q < Pdq.quality_threshold}
    assert low == {"labelme-subset/q0003.jpg", "labelme-subset/q0004.jpg",
                   "misc-images/small.jpg"}
    assert all(q >= 80 for name, q in qualities.items() if name not in low)
    assert not Pdq.usable(Pdq.compute(load_image(PDQ_DIR / "misc-images/small.jpg")))


@pytest.mark.skipif(not EXPECTED, reason="shared PDQ fixtures missing")
def test_pdq_dihedral_hashes_match_the_reference_rotated_files() -> None:
    variants = Pdq.compute_dihedral(load_image(PDQ_DIR / "dih/bridge-1-original.jpg"))
    for entry in EXPECTED["dihedral"]["variants"]:
        if not (PDQ_DIR / entry["file"]).exists():
            continue
        index = EXPECTED["dihedral"]["variants"].index(entry)
        d = hamming(variants[index].bits, bytes.fromhex(entry["cpp_reference_hash"]))
        assert d <= TOLERANCE_BITS["cpp_java_reference_tools"], entry["file"]


@pytest.mark.skipif(not EXPECTED, reason="shared PDQ fixtures missing")
def test_hashing_the_reduced_work_image_stays_far_inside_the_match_threshold() -> None:
    path: Path = PDQ_DIR / "dih/bridge-1-original.jpg"
    full = Pdq.compute(load_image(path))
    reduced = Pdq.compute(work_image(load_image(path, draft_size=(512, 512))))
    assert hamming(full.bits, reduced.bits) <= 12
