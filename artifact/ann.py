"""An approximate top-N index over a version's ranking vectors, for catalogues too large to
score whole on every request: built at training time, exported inside the version (checksummed
like every other file), read by each worker of the service.

The score to maximise is an inner product plus the item's bias, q . v_i + b_i: a maximum inner
product search (MIPS). Graph and inverted-file indexes are built for distances, and searching
them with raw inner products loses recall (hnswlib issue #74), so the search is turned into a
nearest-neighbour one with two extra coordinates (Bachrach et al., 2014). Item i becomes
x_i = [v_i, b_i, sqrt(M^2 - |v_i|^2 - b_i^2)], with M the largest |[v_i, b_i]|, and a query
becomes [q, 1, 0]; then |x_i - q'|^2 = |q'|^2 + M^2 - 2 (q . v_i + b_i), so the nearest items
are exactly the best-scoring ones.

The index is faiss's inverted file with 4-bit product-quantised codes scanned in SIMD registers
(fast-scan, `IVF<lists>,PQ<d>x4fs`): k-means lists over the augmented items, of which a search
visits `nprobe`, each item kept as d half-byte codes (one per coordinate: 33 bytes for 64
factors, 41 MB with the ids for a million items, read into each worker rather than mapped).
About sqrt(n) lists: on independent Gaussian vectors, the hardest case, 1,024 lists reached
recall@10 0.95 at 15x the exact path where 4,096 reached it at 7x (bench/README.md, "Large
catalogues"). The codes only propose: the caller re-scores the candidates exactly, so `nprobe`
is chosen the same way, the smallest whose recall@10 after an exact re-score of `fetch_size`
candidates reaches the target on a sample of the training users' own vectors (no held-out data
involved). Seen items and filters are applied by the caller to the re-scored candidates; it
over-fetches (`fetch_size`) and falls back to the exact path when too few survive. Versions
exported with the earlier flat-code index (`IVF<lists>,Flat`) still load, memory-mapped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from artifact.errors import ArtifactError
from artifact.topn import score, top_n_block

ANN_FILE = "items.faiss"
MIN_ITEMS = 100_000  # the smallest catalogue that gets an index by default (exact below)
TARGET_RECALL = 0.97  # build-time recall@10 on the sample; the bench's target is 0.95
NPROBES = (1, 2, 4, 6, 8, 12, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192,
           208, 224, 256, 288, 320, 384, 448, 512)  # fmt: skip


def augment_items(factors: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """(items, K) factors and (items,) bias -> (items, K + 2) float32 vectors whose L2 order
    to an augmented query is the score order (see the module docstring)."""
    n = len(factors)
    b = np.zeros(n, np.float32) if bias is None else np.asarray(bias, np.float32)
    with_bias = np.hstack([np.asarray(factors, np.float32), b[:, None]])
    norms = np.einsum("ij,ij->i", with_bias, with_bias, dtype=np.float64)
    extra = np.sqrt(np.maximum(norms.max() - norms, 0.0)).astype(np.float32)
    return np.ascontiguousarray(np.hstack([with_bias, extra[:, None]]))


def augment_queries(queries: np.ndarray) -> np.ndarray:
    """(q, K) query vectors -> (q, K + 2): [q, 1, 0]."""
    q = np.atleast_2d(np.asarray(queries, np.float32))
    ones, zeros = np.ones((len(q), 1), np.float32), np.zeros((len(q), 1), np.float32)
    return np.ascontiguousarray(np.hstack([q, ones, zeros]))


def build(
    factors: np.ndarray,
    bias: np.ndarray | None,
    sample_queries: np.ndarray,
    target_recall: float = TARGET_RECALL,
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """The index over `factors` (+ `bias`) and what the manifest records of it.

    Args:
        factors, bias: the item vectors /recommend ranks with, row = item row.
        sample_queries: user vectors to choose `nprobe` on (a few hundred training users').
        target_recall: recall@10 against exact to reach on the sample.

    Returns:
        (faiss index, {"kind", "lists", "nprobe", "recall_at_10", "sample_queries",
        "build_seconds"}).
    """
    import faiss

    started = time.perf_counter()
    items = augment_items(factors, bias)
    n, d = items.shape
    lists = int(min(max(np.sqrt(n), 16), n // 39))  # faiss wants >= 39 points per list
    index = faiss.index_factory(d, f"IVF{lists},PQ{d}x4fs", faiss.METRIC_L2)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = seed
    product: Any = faiss.downcast_index(index)  # IndexIVFPQFastScan; faiss's stubs say Index
    product.pq.cp.seed = seed
    rng = np.random.default_rng(seed)
    index.train(items[rng.choice(n, size=min(n, lists * 256), replace=False)])
    index.add(items)
    exact = _exact_top(factors, bias, sample_queries, 10)
    recall, nprobe = 0.0, NPROBES[-1]
    for probe in NPROBES:
        if probe > lists:
            break
        ivf.nprobe = probe
        found = _rescored_top(index, factors, bias, sample_queries, 10)
        recall, nprobe = recall_at(found, exact), probe
        if recall >= target_recall:
            break
    ivf.nprobe = nprobe
    return index, {
        "kind": f"IVF{lists},PQ{d}x4fs (L2 over [v, b, extra], re-scored exactly)",
        "lists": lists,
        "nprobe": nprobe,
        "recall_at_10": round(recall, 4),
        "sample_queries": len(sample_queries),
        "build_seconds": round(time.perf_counter() - started, 1),
    }


def write(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def load(path: Path, items: int, factors: int, nprobe: int) -> Any:
    """The index at `path`, checked against the version it belongs to (flat-code lists of
    older versions memory-mapped, fast-scan codes read).

    Raises:
        ArtifactError: missing or unreadable, or not an inverted-file index over `items`
            vectors of `factors` + 2 dimensions.
    """
    import faiss

    if not path.is_file():
        raise ArtifactError(f"{path}: missing (the manifest lists an approximate index)")
    try:
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        raise ArtifactError(f"{path}: not a readable faiss index ({first})") from None
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        raise ArtifactError(f"{path}: a {type(index).__name__}, not an inverted-file index")
    if index.ntotal != items or index.d != factors + 2:
        raise ArtifactError(
            f"{path}: holds {index.ntotal} vectors of {index.d} dimensions, but the version has "
            f"{items} items of {factors} factors (+ 2)"
        )
    lists = None if ivf.invlists is None else faiss.downcast_InvertedLists(ivf.invlists)
    if isinstance(lists, faiss.OnDiskInvertedLists):
        # Mapped lists start 32 threads on every search to fault their pages in: 0.93 ms a
        # query against 0.07 ms without, on 1M items (bench/README.md, "Serving at the limit").
        # A served index's pages stay resident once touched.
        lists.prefetch_nthread = 0
    ivf.nprobe = nprobe
    return index


def search(index: Any, query: np.ndarray, k: int, nprobe: int | None = None) -> np.ndarray:
    """The (at most `k`) candidate item rows for one query vector, best first; `nprobe` lists
    visited (default: the version's). Fewer than `k` come back when the visited lists hold
    fewer items."""
    params = None
    if nprobe is not None:  # per call: the index is shared by the worker's threads
        import faiss

        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
    _, rows = index.search(augment_queries(query), k, params=params)
    found: np.ndarray = rows[0]
    return found[found >= 0].astype(np.int64)


def probes(index: Any) -> tuple[int, int]:
    """(the lists a search visits by default, the lists there are)."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    return int(ivf.nprobe), int(ivf.nlist)


def fetch_size(n: int, excluded: int) -> int:
    """How many candidates to ask for to return `n` after `excluded` seen items and filters:
    every seen item may be among them, and a margin of 8n (at least 500) for the filters and
    for the codes' approximate order (the exact re-score sorts the margin out)."""
    return excluded + max(8 * n, 500)


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row of `exact` (q, k) that `found` (q, >= k) holds."""
    hits = sum(len(np.intersect1d(f, e)) for f, e in zip(found, exact, strict=True))
    return hits / exact.size


def _rescored_top(
    index: Any, factors: np.ndarray, bias: np.ndarray | None, queries: np.ndarray, k: int
) -> np.ndarray:
    """Each query's top-k rows (q, k) among `fetch_size(k, 0)` candidates from `index`,
    re-scored exactly, as the serving path ranks them."""
    _, candidates = index.search(augment_queries(queries), fetch_size(k, 0))
    out = np.empty((len(queries), k), np.int64)
    for at, (query, rows) in enumerate(zip(queries, candidates, strict=True)):
        rows = rows[rows >= 0]
        scores = np.asarray(factors[rows] @ query, np.float32)
        if bias is not None:
            scores += bias[rows]
        out[at] = rows[np.argsort(-scores, kind="stable")[:k]]
    return out


def _exact_top(
    factors: np.ndarray, bias: np.ndarray | None, queries: np.ndarray, k: int
) -> np.ndarray:
    """The exact top-k rows of each query (best first), 64 queries per block, through the one
    top-N kernel."""
    blocks = []
    for start in range(0, len(queries), 64):
        scores = score(np.asarray(queries[start : start + 64], np.float32), factors, bias)
        blocks += [rows for rows, _ in top_n_block(scores, k)]
    return np.vstack(blocks)
