"""`recsys compare`'s report and `recsys evaluate` on small data."""

from __future__ import annotations

import json

import matplotlib.image
import pytest

from training.config import RetrievalConfig
from training.evaluation.compare import compare
from training.evaluation.rating import evaluate_frame
from training.evaluation.report import write_report
from training.evaluation.version import evaluate_version

pytestmark = pytest.mark.slow  # trains grids of models


@pytest.fixture(scope="module")
def report_dir(tiny_data, tmp_path_factory):
    retrieval = RetrievalConfig(factors=8, epochs=3, batch_users=16, patience=1)
    results = compare(
        tiny_data,
        ["mf_bias", "dnn"],
        ["adam", "sgd"],
        epochs=2,
        log=lambda _: None,
        retrieval=retrieval,
    )
    out = tmp_path_factory.mktemp("report")
    write_report(results, out)
    return out, results


def test_every_run_is_measured_and_the_best_is_chosen_on_validation(report_dir):
    _, results = report_dir
    runs = results["runs"]
    assert [(r["model"], r["optimizer"]) for r in runs] == [
        ("mf_bias", "adam"),
        ("mf_bias", "sgd"),
        ("dnn", "adam"),
        ("dnn", "sgd"),
    ]
    val = [r["metrics"]["validation"]["rmse"] for r in runs]
    assert results["best_run"] == val.index(min(val))
    for run in runs:
        assert set(run["metrics"]) == {"validation", "test"}
        for key in ("ranking", "ranking_all"):
            assert set(run[key]) >= {"precision", "recall", "ndcg", "hit_rate", "map", "coverage"}
        assert run["parameters"] > 0 and 1 <= run["best_epoch"] <= 2
        assert len(run["history"]["val_rmse"]) == run["epochs_run"]
    test = runs[0]["config"]
    assert test["split_by"] == "rating"
    for who in (results["popularity"], results["retrieval"], runs[0]):
        # every test user with a rating counts under RecBole's relevance, fewer under >= 4
        assert who["ranking_all"]["users"] > who["ranking"]["users"] > 0
    assert 1 <= results["retrieval"]["best_epoch"] <= 3


def test_report_files_are_written_and_readable(report_dir):
    out, results = report_dir
    assert json.loads((out / "results.json").read_text())["best_run"] == results["best_run"]
    report = (out / "report.md").read_text()
    best = results["runs"][results["best_run"]]
    assert f"| ★ | {best['model']} | {best['optimizer']} (" in report
    assert report.count("| mf_bias | adam |") == 1  # the confusion table
    assert report.count("| mf_bias + adam (by rating) | ") == 2  # both top-N tables
    assert report.count("| retrieval vectors (/recommend's default) | ") == 2
    assert (
        "| model | Precision@10 | Recall@10 | NDCG@10 | HitRate@10 | MAP@10 | Coverage@10 |"
        in report
    )
    assert "**Convergence.**" in report and "**Generalisation.**" in report
    assert "| popularity baseline | " in report
    for name in (
        "loss_model_mf_bias.png",
        "loss_model_dnn.png",
        "loss_optimizer_adam.png",
        "loss_optimizer_sgd.png",
        "confusion.png",
    ):
        assert f"![{name}]({name})" in report
        height, width, _ = matplotlib.image.imread(out / name).shape
        assert height > 200 and width > 400


def test_evaluate_reads_back_the_exported_version(version_dir, tiny_data, trained):
    figures = evaluate_version(version_dir, tiny_data, k=5)
    assert figures["split_matches_manifest"]
    # The version is the model fitted on every rating: it learned test, and says so.
    assert figures["version_learned_test"] is True
    fit = trained.exported
    test = trained.split.test
    served = evaluate_frame(fit.model, fit.users, fit.items, test, trained.rating_range)
    assert figures["test"]["rmse"] == pytest.approx(served["rmse"], abs=1e-4)
    assert figures["test"]["rmse"] < trained.metrics["test"]["rmse"]
    # mf_bias's vectors reproduce its ratings, so both rankings agree unless clipping ties them.
    by_rating, by_vectors = figures["by_rating"], figures["by_recommend_vectors"]
    for relevance in ("ranking", "ranking_all"):
        assert by_rating[relevance]["users"] == by_vectors[relevance]["users"] > 0
        assert by_rating[relevance]["ndcg"] == pytest.approx(
            by_vectors[relevance]["ndcg"], abs=0.05
        )
    assert figures["recommend_source"] == "mf_bias"  # a rating-only version
    assert set(figures["confusion"]["matrix"]) == {"liked", "not_liked"}


def test_a_diverging_run_is_reported_not_fatal(tiny_data, monkeypatch, tmp_path):
    from training.models.kinds import KINDS

    monkeypatch.setitem(KINDS["mf"].learning_rates, "sgd", 1e9)
    results = compare(tiny_data, ["mf"], ["adam", "sgd"], epochs=2, log=lambda _: None)
    assert [r["optimizer"] for r in results["runs"]] == ["adam"]
    assert len(results["diverged"]) == 1
    assert "mf with sgd at learning rate 1e+09 diverged" in results["diverged"][0]
    report = write_report(results, tmp_path).read_text()
    assert "| | (diverged) | mf with sgd" in report


def test_compare_under_recboles_split_holds_out_each_users_ratings(tiny_data, tmp_path):
    results = compare(tiny_data, ["mf"], ["adam"], epochs=1, log=lambda _: None, split_by="user")
    assert results["split_by"] == "user" and results["runs"][0]["config"]["split_by"] == "user"
    assert results["retrieval"] is None
    report = write_report(results, tmp_path).read_text()
    assert "each user's ratings cut 8:1:1 (RecBole's split)" in report
    assert "| retrieval vectors (" not in report
