"""Fixtures: tiny artifacts built once per session (synthetic ratings, a trained mf_bias, its
export) and a client serving them. Helpers live in tests/helpers.py."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Apps and `python -m app` processes the tests start keep their default event store out of the
# checkout (most tests give each app its own store: tests.helpers.make_client).
os.environ.setdefault("RECSYS_DATA_DIR", tempfile.mkdtemp(prefix="recsys-test-data-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.helpers import MODEL_NAME, RETRIEVAL_SETTINGS, make_client  # noqa: E402
from training.data.ratings import RatingsData  # noqa: E402
from training.data.synthetic import synthetic_ratings  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data() -> RatingsData:
    ratings, items = synthetic_ratings(n_users=60, n_items=40, n_ratings=1200, seed=1)
    return RatingsData(ratings, items, source="synthetic")


@pytest.fixture(scope="session")
def trained(tiny_data):
    from training.config import TrainConfig
    from training.rating import train_rating

    config = TrainConfig(factors=8, epochs=6, batch_size=128, patience=2, learning_rate=0.01)
    return train_rating(tiny_data, config, log=lambda *_: None)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, trained, tiny_data) -> Path:
    from training.export import export_version

    root = tmp_path_factory.mktemp("models")
    export_version(trained, root, MODEL_NAME, tiny_data.ratings, tiny_data.items)
    return root


@pytest.fixture(scope="session")
def version_dir(models_dir) -> Path:
    return models_dir / MODEL_NAME / "1"


@pytest.fixture(scope="session")
def retrieval(trained):
    """Retrieval vectors on the rating model's split and ids, as `recsys train` fits them."""
    from training.config import RetrievalConfig
    from training.retrieval import train_retrieval

    config = RetrievalConfig(**RETRIEVAL_SETTINGS)
    return train_retrieval(trained.split, config, refit=trained.refitted, log=lambda *_: None)


@pytest.fixture(scope="session")
def default_version(trained, retrieval, tiny_data, tmp_path_factory) -> tuple[Path, Path]:
    """(models dir, version dir) of a version shaped like `recsys train`'s: the rating model
    and the retrieval vectors /recommend ranks with."""
    from training.export import export_version

    root = tmp_path_factory.mktemp("default-models")
    path = export_version(trained, root, "both", tiny_data.ratings, tiny_data.items, retrieval)
    return root, path


@pytest.fixture(scope="session")
def client(models_dir):
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, max_n=20) as c:
        yield c


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server (Debian's `postgresql` package; `.ci/run` installs it), started
    for the session. Without one the tests that need it are skipped, and the run says so."""
    from tests.postgres import PostgresServer, binaries

    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql): NOT TESTED on it")
    server = PostgresServer(bin_dir)
    server.start()
    yield server
    server.remove()
