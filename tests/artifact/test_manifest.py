"""The contract's writers and readers: save, reload the way the service does, compare."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artifact.errors import ArtifactError
from artifact.layout import list_versions, next_version
from artifact.manifest import (
    FORMAT_VERSION,
    Manifest,
    ModelSpec,
    RecommendSpec,
    read_manifest,
    write_manifest,
)
from artifact.seen import SeenItems


def a_manifest(version: int = 3) -> Manifest:
    return Manifest(
        format_version=FORMAT_VERSION,
        name="m",
        version=version,
        created="2026-11-24T00:00:00+00:00",
        model=ModelSpec(kind="mf_bias", factors=8, parameters=123),
        global_mean=3.5,
        rating_range=(1.0, 5.0),
        counts={"users": 2, "items": 3},
        metrics={"test": {"rmse": 0.9, "ndcg": float("nan"), "count": 10}},
        recommend=RecommendSpec(
            source="retrieval", user_factors="retrieval_user_factors.npy",
            item_factors="retrieval_item_factors.npy",
        ),
        files={"user_factors.npy": "0" * 64},
    )  # fmt: skip


def test_a_manifest_written_reads_back_equal_with_nan_as_null(tmp_path):
    version_dir = tmp_path / "3"
    version_dir.mkdir()
    written = a_manifest()
    write_manifest(version_dir, written)
    raw = json.loads((version_dir / "manifest.json").read_text())  # strict JSON: no NaN
    assert raw["metrics"]["test"]["ndcg"] is None
    back = read_manifest(version_dir)
    assert back.model_dump(exclude={"metrics"}) == written.model_dump(exclude={"metrics"})
    assert back.metrics == {"test": {"rmse": 0.9, "ndcg": None, "count": 10}}


def test_a_manifest_with_an_unknown_field_or_another_directory_is_refused(tmp_path):
    version_dir = tmp_path / "3"
    version_dir.mkdir()
    write_manifest(version_dir, a_manifest())
    raw = json.loads((version_dir / "manifest.json").read_text())
    (version_dir / "manifest.json").write_text(json.dumps({**raw, "surprise": 1}))
    with pytest.raises(ArtifactError, match=r"manifest.json: surprise: Extra inputs"):
        read_manifest(version_dir)
    other = tmp_path / "4"
    other.mkdir()
    write_manifest(other, a_manifest(version=3))
    with pytest.raises(ArtifactError, match="says version 3 but lives in directory 4"):
        read_manifest(other)


def test_versions_are_ascii_digit_directories_newest_first(tmp_path):
    for name in ("1", "10", "2", ".staging-x", "٣", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert list_versions(tmp_path) == [10, 2, 1]
    assert next_version(tmp_path) == 11
    assert list_versions(tmp_path / "missing") == [] and next_version(tmp_path / "missing") == 1


def test_seen_items_save_and_read_back(tmp_path):
    users, items = np.array([1, 0, 1, 1, 2]), np.array([2, 0, 0, 2, 1])
    seen = SeenItems.from_pairs(users, items, n_users=4, n_items=3)
    assert [seen.of(u).tolist() for u in range(4)] == [[0], [0, 2], [1], []]
    seen.save(tmp_path)
    back = SeenItems.read(tmp_path, n_users=4, n_items=3)
    assert [a.tolist() for a in back.of_rows(np.array([3, 1]))] == [[], [0, 2]]
    with pytest.raises(ArtifactError, match=r"seen_indptr.npy: shape \(5,\), expected \(6,\)"):
        SeenItems.read(tmp_path, n_users=5, n_items=3)
