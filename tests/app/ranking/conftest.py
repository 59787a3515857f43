"""A client serving the default-shaped version (rating model + retrieval vectors), one per test
module, and that version loaded the way the service loads it, for reference computations."""

from __future__ import annotations

import pytest

from app.serving.loader import load_version
from tests.helpers import make_client


@pytest.fixture(scope="module")
def served(default_version):
    models_dir, path = default_version
    with make_client(models_dir=models_dir, model_name="both", max_n=40) as client:
        yield client, load_version(path)
