"""New versions are picked up without downtime; bad ones are refused; admins pin and roll back.

The swap test runs the real thing: `python -m app` as a subprocess on a models directory, steady
/recommend and /predict traffic from a thread, `recsys train` into the same directory, then a
corrupt version on top."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from artifact.eventlog import engine_url
from cli import main as recsys
from tests.helpers import (
    MODEL_NAME,
    ROOT,
    corrupt_copy,
    free_port,
    fresh_store_url,
    make_client,
    sample,
    two_versions_of,
    wait_for,
)

POLL = 0.3


def served_version(base: str) -> int | None:
    try:
        return httpx.get(base + "/models", timeout=2).json().get("version")
    except (httpx.HTTPError, ValueError):
        return None


@pytest.fixture()
def ratings_csv(tiny_data, tmp_path) -> tuple[Path, Path]:
    ratings = tiny_data.ratings.rename(columns={"user_id": "userId", "item_id": "movieId"})
    ratings_path, movies_path = tmp_path / "ratings.csv", tmp_path / "movies.csv"
    ratings[["userId", "movieId", "rating"]].to_csv(ratings_path, index=False)
    items = tiny_data.items.rename(columns={"item_id": "movieId"})
    items.assign(genres=items["genres"].map("|".join))[["movieId", "title", "genres"]].to_csv(
        movies_path, index=False
    )
    return ratings_path, movies_path


@pytest.mark.integration
def test_a_new_version_is_served_without_a_failed_request_and_a_bad_one_is_skipped(
    models_dir, ratings_csv, tmp_path
):
    root = tmp_path / "models"
    shutil.copytree(models_dir / MODEL_NAME / "1", root / MODEL_NAME / "1")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "RECSYS_MODELS_DIR": str(root),
        "RECSYS_MODEL_NAME": MODEL_NAME,
        "RECSYS_PORT": str(port),
        "RECSYS_POLL_SECONDS": str(POLL),
        "RECSYS_ACCESS_LOG": "false",
    }
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        wait_for(lambda: served_version(base) == 1, timeout=60)
        users = json.loads((root / MODEL_NAME / "1" / "user_ids.json").read_text())
        items = json.loads((root / MODEL_NAME / "1" / "item_ids.json").read_text())
        statuses: list[int] = []
        failures: list[str] = []
        stop = threading.Event()

        def traffic() -> None:
            with httpx.Client(base_url=base, timeout=10) as client:
                i = 0
                while not stop.is_set():
                    user, item = users[i % len(users)], items[i % len(items)]
                    try:
                        statuses.append(client.get(f"/recommend/{user}").status_code)
                        body = {"instances": [{"user_id": user, "item_id": item}]}
                        statuses.append(client.post("/predict", json=body).status_code)
                    except httpx.HTTPError as err:
                        failures.append(repr(err))
                    i += 1

        driver = threading.Thread(target=traffic)
        driver.start()
        try:
            ratings_path, movies_path = ratings_csv
            # A separate process, as ops would run it: training in this process would starve the
            # traffic thread of the GIL for seconds, long enough for the server to close its idle
            # keep-alive connection just as the client reuses it (a client-side artefact).
            trainer = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cli",
                    "train",
                    "--ratings",
                    str(ratings_path),
                    "--items",
                    str(movies_path),
                    "--models-dir",
                    str(root),
                    "--name",
                    MODEL_NAME,
                    "--factors",
                    "8",
                    "--epochs",
                    "2",
                    "--retrieval-epochs",
                    "2",
                    "--retrieval-factors",
                    "8",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            assert trainer.returncode == 0, trainer.stderr[-2000:]
            waited = wait_for(lambda: served_version(base) == 2, timeout=30)
            corrupt_copy(root / MODEL_NAME / "2", root / MODEL_NAME / "3")
            time.sleep(POLL * 5)
            assert served_version(base) == 2
        finally:
            stop.set()
            driver.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log_path.read_text()
    assert not failures, failures[:3]
    assert len(statuses) > 20 and set(statuses) == {200}, sorted(set(statuses))
    assert waited < 15
    assert "version 3 refused, still serving the old one" in text
    assert "item_factors.npy" in text.split("version 3 refused")[1].splitlines()[0]
    assert text.count("version 3 refused") == 1  # refused once, not re-tried every poll


def admin(models_dir, **settings):
    return make_client(models_dir=models_dir, model_name=MODEL_NAME, poll_seconds=0, **settings)


@pytest.fixture()
def two_versions(models_dir, tmp_path) -> Path:
    return two_versions_of(models_dir, tmp_path / "models")


def test_admin_routes_are_absent_without_a_token(two_versions):
    with admin(two_versions) as c:
        assert c.post("/admin/reload").status_code == 404
        assert c.post("/admin/models/1").status_code == 404


def test_admin_rolls_back_pins_and_reloads(two_versions):
    auth = {"Authorization": "Bearer s3cret"}
    with admin(two_versions, admin_token="s3cret") as c:
        assert c.get("/models").json()["version"] == 2
        wrong = c.post("/admin/models/1", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert c.post("/admin/models/1").status_code == 401
        rolled = c.post("/admin/models/1", headers=auth)
        assert rolled.status_code == 200
        assert rolled.json() == {
            "changed": True,
            "model": {"name": MODEL_NAME, "version": 1},
            "pinned": 1,
        }
        assert c.get("/models").json()["version"] == 1
        missing = c.post("/admin/models/9", headers=auth)
        assert missing.status_code == 404
        assert missing.json() == {"detail": f"no version 9 of {MODEL_NAME}"}  # no host path
        corrupt_copy(two_versions / MODEL_NAME / "2", two_versions / MODEL_NAME / "3")
        refused = c.post("/admin/models/3", headers=auth)
        assert refused.status_code == 409
        assert "version 3 refused" in refused.json()["detail"]
        assert f"{MODEL_NAME}/3/item_factors.npy: SHA-256" in refused.json()["detail"]
        assert str(two_versions) not in refused.json()["detail"]  # no host paths in answers
        assert c.get("/models").json()["version"] == 1  # still the pinned one
        assert sample(c.get("/metrics").text, "recsys_versions_refused") == 1
        reloaded = c.post("/admin/reload", headers=auth).json()
        assert reloaded == {
            "changed": True,
            "model": {"name": MODEL_NAME, "version": 2},
            "pinned": None,
        }
        assert sample(c.get("/metrics").text, "recsys_versions_refused") == 1  # 3 retried
        shutil.rmtree(two_versions / MODEL_NAME / "3")
        c.post("/admin/reload", headers=auth)
        assert "\nrecsys_versions_refused 0.0\n" in c.get("/metrics").text


@pytest.mark.parametrize(
    "path, status",
    [
        ("/admin/models/abc", 422),
        ("/admin/models/0", 422),
        ("/admin/models/-1", 422),
        ("/admin/models/1.5", 422),
        ("/admin/models/99999999999999999999999", 404),
        ("/admin/models/", 404),
    ],
)
def test_admin_garbage_gets_a_clean_4xx(two_versions, path, status):
    with admin(two_versions, admin_token="s3cret") as c:
        response = c.post(path, headers={"Authorization": "Bearer s3cret"})
        assert response.status_code == status, response.text
        assert "detail" in response.json()
        assert c.get("/models").json()["version"] == 2  # nothing changed


def test_prune_keeps_the_newest(two_versions, capsys):
    shutil.copytree(two_versions / MODEL_NAME / "2", two_versions / MODEL_NAME / "10")
    assert (
        recsys(["prune", "--models-dir", str(two_versions), "--name", MODEL_NAME, "--keep", "2"])
        == 0
    )
    assert sorted(p.name for p in (two_versions / MODEL_NAME).iterdir()) == ["10", "2"]
    assert "deleted" in capsys.readouterr().out
    assert (
        recsys(["prune", "--models-dir", str(two_versions), "--name", MODEL_NAME, "--keep", "0"])
        == 2
    )


@pytest.mark.integration
def test_without_a_loadable_version_it_waits_or_exits_as_configured(models_dir, tmp_path):
    root = tmp_path / "models"
    corrupt_copy(models_dir / MODEL_NAME / "1", root / MODEL_NAME / "1")
    env = {**os.environ, "RECSYS_MODELS_DIR": str(root), "RECSYS_MODEL_NAME": MODEL_NAME}
    env |= {"RECSYS_PORT": str(free_port()), "RECSYS_REQUIRE_MODEL": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "no model to serve, exiting (RECSYS_REQUIRE_MODEL)" in done.stderr
    assert "item_factors.npy" in done.stderr  # says which file is wrong
    with make_client(models_dir=root, model_name=MODEL_NAME) as c:  # the default: stay up
        assert c.get("/health").status_code == 200
        assert c.get("/ready").status_code == 503


def test_a_pin_is_a_row_of_the_store_that_other_workers_and_restarts_follow(two_versions, tmp_path):
    store = fresh_store_url()
    with admin(two_versions, admin_token="s3cret", store_url=store, sync_seconds=0.1) as c:
        with admin(two_versions, store_url=store, sync_seconds=0.1) as other:  # another replica
            assert other.get("/models").json()["version"] == 2
            pinned = c.post("/admin/models/1", headers={"Authorization": "Bearer s3cret"})
            assert pinned.status_code == 200
            wait_for(lambda: other.get("/models").json()["version"] == 1, 5)
    with create_engine(engine_url(store)).connect() as conn:
        row = conn.execute(text("SELECT value, revision FROM control")).one()
    assert json.loads(row[0]) == {"pinned": 1, "reloads": 0} and row[1] == 1
    with admin(two_versions, store_url=store) as c:  # a later start, another data directory
        assert c.get("/models").json()["version"] == 1


def test_the_file_form_of_a_choice_is_migrated_once_and_a_broken_one_ignored(
    two_versions, tmp_path
):
    data = tmp_path / "data"
    control = data / "admin" / f"{MODEL_NAME}.json"
    control.parent.mkdir(parents=True)
    control.write_text("{not json")
    with admin(two_versions, data_dir=data) as c:
        assert c.get("/models").json()["version"] == 2  # started, newest, choice ignored
    control.write_text(json.dumps({"pinned": 1, "reloads": 0}))
    store = fresh_store_url()
    with admin(two_versions, data_dir=data, store_url=store) as c:
        assert c.get("/models").json()["version"] == 1  # migrated into the store
    control.write_text(json.dumps({"pinned": 2, "reloads": 0}))
    with admin(two_versions, data_dir=data, store_url=store) as c:
        assert c.get("/models").json()["version"] == 1  # the store's row; the file is ignored
