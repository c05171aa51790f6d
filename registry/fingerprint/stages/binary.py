"""Binary-code indexes shared by the hash stage (PDQ, pHash) and the local stage (ORB).

Small segments get an exact `IndexBinaryFlat`. Large ones get a faiss `IndexBinaryIVF`: the codes
are split into `nlist` inverted lists around centroids, and a query scans only the `nprobe`
lists nearest to it, so its cost follows `nprobe * n / nlist` instead of `n`. The centroids are
codes sampled from the segment itself (no k-means: training binary k-means at 10^6-10^7 codes
costs hours on two cores, and sampled centroids follow the data's own density). Measured in
bench/bench_scale.py against the exact index: range-search recall at PDQ distance <= 31, and the
candidate recall of the ORB votes.

Range searches (the hash stages) over very large segments get a faiss `IndexBinaryMultiHash`
instead (multi-index hashing): the 256 bits are cut into 10 substrings of 24 bits, each with its
own hash table, and a query looks up its substrings' buckets and those one bit away, then checks
the candidates' full distance. Its cost hardly grows with the segment, where the IVF's grows with
the share of lists scanned (or its recall drops when that share is capped); it costs about 900
bytes per code in memory against the IVF's 40, so it is kept for segments where the IVF no longer
holds its recall at a bounded cost (`MIH_ABOVE_CODES`). Exact up to 19 bits (10 substrings: one
of them differs in at most one bit); a pair 20-31 bits apart may differ in 2 or more bits of
every substring and be missed: measured against the exact index in bench/bench_scale.py.

The local stage's ORB index (`build(tree=True)`) has hundreds of thousands of lists at a large
catalog's size; its coarse step is a two-level vocabulary tree: the lists' centroids are
themselves held in a small IVF (`TREE_PROBES` of its cells scanned), so finding a query code's
lists costs about `sqrt(TREE_PROBES x lists)` comparisons twice over instead of every centroid
(flat) or an HNSW graph walk, whose cost grew with the catalog (5.6 ms per 800-descriptor probe
at 6.8M codes, 16.9 at 72M).

The index is written with the segment (`write`), so loading a segment reads a file rather than
re-assigning every code.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

FLAT_MAX_CODES = 20_000
ADD_CHUNK = 1_000_000
CODES_PER_LIST = 1_000
# Above this many lists the coarse step itself (every query code against every centroid) costs
# more than the lists: the centroids go in an HNSW graph instead (logarithmic).
HNSW_ABOVE_LISTS = 16_384
HNSW_NEIGHBOURS = 16
MIN_LISTS = 64
MAX_LISTS = 65_536
# With its centroids in an HNSW graph (`build(graph=True)`) an IVF's coarse step grows with the
# logarithm of the lists, not with their number, so the lists go past MAX_LISTS there. Measured
# at 72M ORB codes (100,000 assets' size; bench/bench_orb_index.py, RESULTS fifth round), CPU
# ms per 800-descriptor probe: 65,536 lists (1,099 codes each) 70.6; 262,144 lists 44.5;
# 524,288 lists 54.8 (the graph's own search grows: 9.4, 16.9, 22.2 ms).
GRAPH_MAX_LISTS = 1 << 18
# The vocabulary tree (`build(tree=True)`): the lists' centroids in an IVF of about
# sqrt(TREE_PROBES x lists) cells, TREE_PROBES of them scanned per query code. Its coarse step
# grows with the square root of the lists, not with their number, and has no cap short of
# TREE_MAX_LISTS. Measured (RESULTS, sixth round): see bench/bench_orb_index.py.
TREE_PROBES = 8
TREE_MAX_LISTS = 1 << 20
# Lists scanned per query: a fixed share of the lists, within bounds. Recall is measured, not
# assumed: see bench/RESULTS.md (scale). The ORB votes tolerate a lower per-descriptor recall
# than hash lookups, so the local stage asks for fewer probes (`read(..., probes=)`).
# Measured on the 10,000-asset bench catalog (236,506 PDQ hashes, 128 lists), real query probes
# plus near copies: recall against the exact index 0.964 at 1/16 of the lists, 0.994 at 1/4
# (0.061 ms per probe against 0.232 ms flat), 0.998 at 1/2.
PROBE_SHARE = 1 / 4
MIN_PROBES = 32
MAX_PROBES = 128
# Multi-index hashing for range searches over segments of at least this many codes (2M PDQ
# hashes: about 77,000 catalog pictures). Measured on random 256-bit codes, 1M: recall 0.993
# against the exact index at 48x its lookups/s (bench/RESULTS.md); 10 x 24 bits and buckets one
# bit away; 16 x 16 bits is exact but was slower than the flat index here.
MIH_ABOVE_CODES = 2_000_000
MIH_HASHES = 10
MIH_BITS = 24
MIH_FLIPS = 1


def list_count(n: int, per_list: int | None = CODES_PER_LIST, *,
               max_lists: int = MAX_LISTS) -> int:
    """About `per_list` codes per list, at most `max_lists`; `per_list=None`: about sqrt(n)
    lists of sqrt(n) codes, which balances a flat coarse step (every centroid) against the list
    scanned, and keeps the build (every code against every centroid) at n^1.5."""
    target = math.isqrt(n) if per_list is None else n // per_list
    lists = max(MIN_LISTS, min(max_lists, target))
    return 1 << (lists.bit_length() - 1)  # a power of two, at most the target


def probe_count(nlist: int) -> int:
    return max(MIN_PROBES, min(MAX_PROBES, round(nlist * PROBE_SHARE), nlist))


def build(codes: np.ndarray, *, seed: int = 0, flat_max: int | None = None,
          per_list: int | None = CODES_PER_LIST, mih_above: int | None = None,
          graph: bool = False, tree: bool = False) -> Any:
    """An index over `codes` ((n, bytes) uint8): flat when small, IVF with sampled centroids when
    large (about `per_list` codes per list); with `mih_above` (range searches only: the hash
    stages), multi-index hashing from that many codes. `graph`: the IVF's centroids in an HNSW
    graph whatever their number, at most `GRAPH_MAX_LISTS` of them; `tree`: in a vocabulary tree
    (`tree_quantizer`), at most `TREE_MAX_LISTS`. Row numbers are the ids."""
    flat_max = FLAT_MAX_CODES if flat_max is None else flat_max
    n, width = codes.shape
    bits = width * 8
    if n < flat_max:
        index: Any = faiss.IndexBinaryFlat(bits)
    elif mih_above is not None and n >= mih_above and bits >= MIH_HASHES * MIH_BITS:
        index = faiss.IndexBinaryMultiHash(bits, MIH_HASHES, MIH_BITS)
        index.nflip = MIH_FLIPS
    else:
        nlist = list_count(n, per_list, max_lists=TREE_MAX_LISTS if tree else
                           GRAPH_MAX_LISTS if graph else MAX_LISTS)
        rng = np.random.default_rng(seed)
        centroids = _sample(codes, nlist, rng)
        quantizer: Any
        if tree:
            quantizer = tree_quantizer(centroids, rng)
        else:
            quantizer = faiss.IndexBinaryHNSW(bits, HNSW_NEIGHBOURS) \
                if graph or nlist > HNSW_ABOVE_LISTS else faiss.IndexBinaryFlat(bits)
            quantizer.add(centroids)
        index = faiss.IndexBinaryIVF(quantizer, bits, nlist)
        index.is_trained = True
        index.own_fields = True
        quantizer.this.disown()  # the IVF index frees it
        index.nprobe = probe_count(nlist)
    for start in range(0, n, ADD_CHUNK):  # `codes` may be memory-mapped: read a chunk at a time
        index.add(np.ascontiguousarray(codes[start:start + ADD_CHUNK], dtype=np.uint8))
    return index


def _sample(codes: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` of the codes, drawn without replacement, in row order."""
    return np.ascontiguousarray(codes[np.sort(rng.choice(len(codes), count, replace=False))],
                                dtype=np.uint8)


def tree_quantizer(centroids: np.ndarray, rng: np.random.Generator) -> Any:
    """The coarse step of a vocabulary tree: `centroids` (the leaves, one per list) in an IVF
    whose cells are a sample of them (about sqrt(TREE_PROBES x leaves), a power of two, so that
    the cells and the `TREE_PROBES` cells scanned cost about the same), `TREE_PROBES` cells
    scanned. Searched for a code's nearest `nprobe` leaves, it returns them among the leaves
    of its nearest cells: approximate, like the graph, measured by the votes it keeps."""
    leaves, width = centroids.shape
    cells = max(1, 1 << (math.isqrt(TREE_PROBES * leaves).bit_length() - 1))
    cells = min(cells, leaves)
    top: Any = faiss.IndexBinaryFlat(width * 8)
    top.add(_sample(centroids, cells, rng))
    quantizer: Any = faiss.IndexBinaryIVF(top, width * 8, cells)
    quantizer.is_trained = True
    quantizer.own_fields = True
    top.this.disown()
    quantizer.add(centroids)
    quantizer.nprobe = min(TREE_PROBES, cells)
    return quantizer


def write(index: Any, path: Path) -> None:
    faiss.write_index_binary(index, str(path))


def read(path: Path, *, probes: int | None = None) -> Any:
    index = faiss.read_index_binary(str(path))
    if isinstance(index, faiss.IndexBinaryIVF):
        index.nprobe = probe_count(index.nlist) if probes is None else min(probes, index.nlist)
    return index


# Measured resident memory of IndexBinaryMultiHash(256, 10, 24) per code, codes included
# (std::unordered_map buckets of id vectors): 903 bytes at 1M random codes.
MIH_BYTES_PER_CODE = 903


def coarse_graph(index: Any) -> bool:
    """True for an IVF index whose centroids sit in an HNSW graph."""
    return isinstance(index, faiss.IndexBinaryIVF) and isinstance(
        faiss.downcast_IndexBinary(index.quantizer), faiss.IndexBinaryHNSW)


def coarse_tree(index: Any) -> bool:
    """True for an IVF index whose centroids sit in a vocabulary tree (`tree_quantizer`)."""
    return isinstance(index, faiss.IndexBinaryIVF) and isinstance(
        faiss.downcast_IndexBinary(index.quantizer), faiss.IndexBinaryIVF)


def memory_bytes(index: Any) -> int:
    """Codes plus, for IVF, the 8-byte id per code and the centroids (and, in an HNSW graph,
    their level-0 links: 2 x neighbours x 4 bytes each; in a vocabulary tree, the centroids'
    own IVF); for multi-index hashing, its measured bytes per code."""
    if isinstance(index, faiss.IndexBinaryMultiHash):
        return int(index.ntotal * MIH_BYTES_PER_CODE)
    if isinstance(index, faiss.IndexBinaryIVF):
        lists = int(index.ntotal * (index.code_size + 8))
        if coarse_tree(index):
            return lists + memory_bytes(faiss.downcast_IndexBinary(index.quantizer))
        links = 2 * HNSW_NEIGHBOURS * 4 if coarse_graph(index) else 0
        return lists + int(index.nlist * (index.code_size + links))
    return int(index.ntotal * index.code_size)
