"""The binary-code indexes of the hash and local stages: exact when small, IVF when large, and
what the IVF finds against the exact index."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from registry.fingerprint.stages import binary


def _near_copies(codes: np.ndarray, count: int, flips: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = codes[rng.integers(0, len(codes), count)].copy()
    for row in out:
        for bit in rng.choice(codes.shape[1] * 8, flips, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return out


def _range_hits(exact: faiss.IndexBinary, ours: faiss.IndexBinary, queries: np.ndarray
                ) -> tuple[int, int, bool]:
    """(pairs within PDQ's 31 bits per the exact index, how many `ours` found, whether `ours`
    returned only such pairs)."""
    lims0, _, ids0 = exact.range_search(queries, 32)
    lims1, _, ids1 = ours.range_search(queries, 32)
    truth = hits = 0
    within = True
    for i in range(len(queries)):
        want = set(ids0[lims0[i]:lims0[i + 1]].tolist())
        got = set(ids1[lims1[i]:lims1[i + 1]].tolist())
        truth += len(want)
        hits += len(want & got)
        within = within and got <= want
    return truth, hits, within


def test_small_segments_are_exact_and_large_ones_ivf_that_survive_a_round_trip(
    tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    small = binary.build(rng.integers(0, 256, (1_000, 32), dtype=np.uint8))
    assert isinstance(small, faiss.IndexBinaryFlat)
    codes = rng.integers(0, 256, (binary.FLAT_MAX_CODES + 5_000, 32), dtype=np.uint8)
    large = binary.build(codes)
    assert isinstance(large, faiss.IndexBinaryIVF) and large.ntotal == len(codes)
    binary.write(large, tmp_path / "i.faiss")
    again = binary.read(tmp_path / "i.faiss", probes=1)
    assert again.ntotal == len(codes) and again.nprobe == 1
    assert binary.read(tmp_path / "i.faiss").nprobe == binary.probe_count(again.nlist)
    assert binary.memory_bytes(again) >= len(codes) * 40


def test_ivf_range_search_finds_what_the_exact_index_finds_at_pdq_distance(
) -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (60_000, 32), dtype=np.uint8)
    queries = _near_copies(codes, 300, flips=20)
    flat = faiss.IndexBinaryFlat(256)
    flat.add(codes)
    truth, hits, _ = _range_hits(flat, binary.build(codes), queries)
    assert truth >= 300 and hits / truth >= 0.95


def test_sqrt_lists_balance_the_coarse_step_and_the_list() -> None:
    assert binary.list_count(1_000_000, None) == 512  # sqrt is 1,000: the power of two below
    assert binary.list_count(1_000_000) == 512  # 1,000 codes per list: 1,000 lists -> 512
    assert binary.list_count(10, None) == binary.MIN_LISTS


def test_graph_indexes_keep_their_lists_short_past_the_flat_cap() -> None:
    # 72M ORB codes (about 100,000 assets): 262,144 lists in a graph (about 275 codes a list),
    # where a flat coarse step stops at MAX_LISTS (about 1,100 codes a list).
    assert binary.list_count(72_000_000, 128) == binary.MAX_LISTS
    assert binary.list_count(72_000_000, 128, max_lists=binary.GRAPH_MAX_LISTS) == 1 << 18
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (140_000, 32), dtype=np.uint8)
    index = binary.build(codes, graph=True, per_list=1)
    assert binary.coarse_graph(index) and index.nlist == 131_072 > binary.MAX_LISTS
    index.nprobe = 1
    _dist, ids = index.search(codes[:200], 1)
    assert (ids[:, 0] == np.arange(200)).all()  # each code finds itself through the graph


def test_tree_indexes_find_codes_and_near_copies_through_a_small_coarse_step(
    tmp_path: Path
) -> None:
    # 72M ORB codes (about 100,000 assets): 524,288 lists of about 137 codes in a tree.
    assert binary.list_count(72_000_000, 128, max_lists=binary.TREE_MAX_LISTS) == 1 << 19
    rng = np.random.default_rng(6)
    codes = rng.integers(0, 256, (140_000, 32), dtype=np.uint8)
    index = binary.build(codes, tree=True, per_list=16)
    assert binary.coarse_tree(index) and not binary.coarse_graph(index)
    assert index.nlist == 8_192
    cells = faiss.downcast_IndexBinary(index.quantizer)
    assert cells.nlist == 256 and cells.nprobe == binary.TREE_PROBES  # sqrt(8 x 8,192)
    binary.write(index, tmp_path / "t.faiss")
    index = binary.read(tmp_path / "t.faiss", probes=4)
    assert binary.coarse_tree(index) and index.nprobe == 4
    assert faiss.downcast_IndexBinary(index.quantizer).nprobe == binary.TREE_PROBES
    _dist, ids = index.search(codes[:500], 1)
    assert (ids[:, 0] == np.arange(500)).all()  # each code finds itself through the tree
    # A near copy (8 of 256 bits flipped) finds its origin as the exact search does, mostly:
    # the tree, like the graph, is approximate; random codes are its worst case (no clusters).
    flips = np.packbits(rng.random((500, 256)) < 8 / 256, axis=1)
    _dist, ids = index.search(codes[:500] ^ flips, 1)
    assert (ids[:, 0] == np.arange(500)).mean() >= 0.6
    assert binary.memory_bytes(index) >= len(codes) * 40 + index.nlist * 40


def test_large_range_segments_use_multi_index_hashing_that_finds_pdq_near_copies(
    tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (50_000, 32), dtype=np.uint8)
    index = binary.build(codes, mih_above=40_000)
    assert isinstance(index, faiss.IndexBinaryMultiHash) and index.ntotal == len(codes)
    binary.write(index, tmp_path / "m.faiss")
    again = binary.read(tmp_path / "m.faiss")
    assert isinstance(again, faiss.IndexBinaryMultiHash) and again.nflip == binary.MIH_FLIPS
    assert binary.memory_bytes(again) == len(codes) * binary.MIH_BYTES_PER_CODE
    # Near copies at every distance up to the PDQ threshold, against the exact index.
    flat = faiss.IndexBinaryFlat(256)
    flat.add(codes)
    for flips in (4, 16, 24, 30):
        truth, hits, within = _range_hits(
            flat, again, _near_copies(codes, 200, flips=flips, seed=flips))
        assert within, flips  # nothing beyond 31 bits
        # Exact up to 19 bits (10 substrings: one differs in at most one bit).
        assert truth >= 200 and hits / truth >= (1.0 if flips <= 19 else 0.85), flips
    # Below the threshold (and for the k-NN searches of the local stage) the IVF stays.
    assert isinstance(binary.build(codes), faiss.IndexBinaryIVF)
