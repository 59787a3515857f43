"""Training input a model cannot learn from is refused with a reason, and a run that fails
leaves no version behind (the service must never find a half-written or NaN model)."""

from __future__ import annotations

import json
import math

import pytest

from cli import main as recsys


def write_ratings(path, rows) -> str:
    path.write_text("userId,movieId,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows))
    return str(path)


def train(ratings: str, models, *options: str) -> int:
    return recsys(
        ["train", "--ratings", ratings, "--models-dir", str(models), "--name", "m", "--epochs", "2"]
        + ["--retrieval-epochs", "2", "--factors", "4", "--retrieval-factors", "4", *options]
    )


def nothing_exported(models) -> bool:
    return not (models / "m").exists() or not any((models / "m").iterdir())


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            [(1, i, 1 + i % 5) for i in range(50)],
            "50 ratings, all from one user (user id '1'): a recommender learns from how users "
            "and items differ; it needs at least 2 users",
        ),
        (
            [(u, 7, 1 + u % 5) for u in range(50)],
            "50 ratings, all from one item (item id '7')",
        ),
        (
            [(1, 1, 4), (2, 2, 3), (1, 2, 5)],
            "3 ratings leave the validation split empty (10% of them, split by rating)",
        ),
    ],
    ids=["one user", "one item", "too few to split"],
)
def test_data_a_model_cannot_learn_from_is_refused(tmp_path, capsys, rows, message):
    ratings = write_ratings(tmp_path / "ratings.csv", rows)
    assert train(ratings, tmp_path / "models") == 2
    assert message in capsys.readouterr().err
    assert nothing_exported(tmp_path / "models")


def test_a_rating_outside_the_stated_scale_is_refused_with_its_line(tmp_path, capsys):
    rows = [(u, i, 1 + (u + i) % 5) for u in range(10) for i in range(10)] + [(3, 4, 50)]
    ratings = write_ratings(tmp_path / "ratings.csv", rows)
    assert train(ratings, tmp_path / "models", "--rating-scale", "1", "5") == 2
    assert "1 ratings are outside the scale 1-5 (line 102)" in capsys.readouterr().err
    assert nothing_exported(tmp_path / "models")


@pytest.mark.slow
def test_a_run_that_diverges_leaves_no_version(tmp_path, capsys):
    rows = [(u, i, 1 + (u * i) % 5) for u in range(20) for i in range(10)]
    ratings = write_ratings(tmp_path / "ratings.csv", rows)
    models = tmp_path / "models"
    status = train(ratings, models, "--optimizer", "sgd", "--lr", "1e9", "--no-retrieval")
    assert status == 2
    assert "diverged" in capsys.readouterr().err
    assert nothing_exported(models)  # no version, no staging directory


@pytest.mark.slow
def test_tiny_data_whose_validation_cannot_rank_still_exports_strict_json(tmp_path):
    """Two items, one rated once: no validation user has a held-out relevant item, so top-N
    metrics are undefined. Training must not stop at epoch 0 (it did: a KeyError), and the
    manifest must say null, not NaN, which strict JSON parsers refuse."""
    rows = [(u, 7, 1 + u % 5) for u in range(50)] + [(3, 8, 4)]
    ratings = write_ratings(tmp_path / "ratings.csv", rows)
    assert train(ratings, tmp_path / "models") == 0
    text = (tmp_path / "models" / "m" / "1" / "manifest.json").read_text()

    def refuse(constant):
        raise ValueError(f"{constant} in manifest.json")

    manifest = json.loads(text, parse_constant=refuse)
    assert manifest["metrics"]["ranking_validation"]["ndcg"] is None
    assert manifest["retrieval"]["best_epoch"] == 2
    assert all(math.isfinite(v) for v in manifest["metrics"]["validation"].values())
