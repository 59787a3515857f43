"""The approximate index: the MIPS-to-L2 transform keeps the score order, the index finds the
exact top-10 (after the exact re-score) on a small clustered catalogue, loads back (an earlier
version's flat-code index memory-mapped), and is refused with a message naming the file when it
is broken."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from artifact import ann
from artifact.errors import ArtifactError


def catalogue(items: int, factors: int = 16, seed: int = 0):
    """Clustered item vectors with biases, and user vectors drawn like them."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(40, factors)).astype(np.float32)
    vectors = topics[rng.integers(0, 40, items)] + 0.5 * rng.normal(size=(items, factors))
    users = topics[rng.integers(0, 40, 300)] + 0.5 * rng.normal(size=(300, factors))
    bias = rng.normal(size=items).astype(np.float32)
    return vectors.astype(np.float32), bias, users.astype(np.float32)


def test_nearest_in_l2_after_the_transform_is_best_by_score():
    vectors, bias, users = catalogue(500)
    items, queries = ann.augment_items(vectors, bias), ann.augment_queries(users[:20])
    for q, user in zip(queries, users[:20], strict=True):
        by_distance = np.argsort(((items - q) ** 2).sum(axis=1), kind="stable")
        by_score = np.argsort(-(vectors @ user + bias), kind="stable")
        assert by_distance[:10].tolist() == by_score[:10].tolist()


def rescored(index, vectors, bias, user, k=10):
    """The service's path: over-fetch, re-score the candidates exactly, keep the best k."""
    rows = ann.search(index, user, ann.fetch_size(k, 0))
    return rows[np.argsort(-(vectors[rows] @ user + bias[rows]), kind="stable")[:k]]


def test_recall_at_10_on_a_small_catalogue(tmp_path):
    vectors, bias, users = catalogue(20_000)
    index, built = ann.build(vectors, bias, users[:100])
    assert built["recall_at_10"] >= ann.TARGET_RECALL and built["lists"] == 141  # sqrt(n)
    assert built["kind"].startswith("IVF141,PQ18x4fs")
    path = tmp_path / ann.ANN_FILE
    ann.write(index, path)
    loaded = ann.load(path, 20_000, 16, built["nprobe"])
    # Fast-scan codes are read, 9 bytes an item (18 half-byte codes), not mapped.
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(loaded).invlists)
    assert (
        type(lists).__name__ == "BlockInvertedLists" and faiss.downcast_index(loaded).code_size == 9
    )
    held_out = users[100:]  # not the ones nprobe was chosen on
    exact = np.argsort(-(held_out @ vectors.T + bias), axis=1)[:, :10]
    found = np.array([rescored(loaded, vectors, bias, u) for u in held_out])
    assert ann.recall_at(found, exact) >= 0.95
    assert found[0].tolist() == rescored(index, vectors, bias, held_out[0]).tolist()  # as built


def test_an_earlier_flat_code_index_still_loads_memory_mapped(tmp_path):
    vectors, bias, users = catalogue(2_000)
    items = ann.augment_items(vectors, bias)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(18), 18, 32, faiss.METRIC_L2)
    index.train(items)
    index.add(items)
    path = tmp_path / ann.ANN_FILE
    ann.write(index, path)
    loaded = ann.load(path, 2_000, 16, 32)  # every list: exact
    # Without the 32 prefetch threads per search faiss starts by default on mapped lists.
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(loaded).invlists)
    assert type(lists).__name__ == "OnDiskInvertedLists" and lists.prefetch_nthread == 0
    best = np.argsort(-(vectors @ users[0] + bias), kind="stable")[:10]
    assert ann.search(loaded, users[0], 10).tolist() == best.tolist()
    broken = tmp_path / "cut.faiss"
    broken.write_bytes(path.read_bytes()[: path.stat().st_size - 100])
    with pytest.raises(
        ArtifactError, match=f"{broken}: not a readable faiss index .*exceeds mapped"
    ):
        ann.load(broken, 2_000, 16, 32)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    vectors, bias, users = catalogue(2_000)
    index, built = ann.build(vectors, bias, users[:50])
    path = tmp_path_factory.mktemp("ann") / ann.ANN_FILE
    ann.write(index, path)
    return path, built["nprobe"]


def test_a_truncated_index_is_refused_naming_the_file(written, tmp_path):
    path, nprobe = written
    broken = tmp_path / ann.ANN_FILE
    for cut in (5000, path.stat().st_size - 100):  # in the header, in the lists
        broken.write_bytes(path.read_bytes()[:cut])
        with pytest.raises(ArtifactError, match=f"{broken}: .*not a readable faiss index"):
            ann.load(broken, 2_000, 16, nprobe)


def test_an_index_of_another_catalogue_or_kind_is_refused(written, tmp_path):
    path, nprobe = written
    with pytest.raises(ArtifactError, match="holds 2000 vectors of 18 dimensions, but the version"):
        ann.load(path, 1_999, 16, nprobe)
    flat = tmp_path / ann.ANN_FILE
    faiss.write_index(faiss.IndexFlatL2(18), str(flat))
    with pytest.raises(ArtifactError, match=f"{flat}: a IndexFlatL2, not an inverted-file index"):
        ann.load(flat, 0, 16, nprobe)
    with pytest.raises(ArtifactError, match="missing"):
        ann.load(tmp_path / "absent.faiss", 2_000, 16, nprobe)
