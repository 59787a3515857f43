"""Property-based fuzzing of every operation in the OpenAPI schema (schemathesis).

Hypothesis generates requests that fit the schema and requests that do not; each answer must not
be a 5xx and must conform to the schema: a documented status, the documented content type and a
body that validates against that status's schema. Bounded: a fixed number of examples per
operation and mode, derandomised, so CI runs the same cases every time."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from app.main import create_app
from app.settings import Settings
from tests.helpers import MODEL_NAME, fresh_store_url

pytestmark = pytest.mark.slow  # thousands of generated requests

EXAMPLES = 200
# Every documented operation, read from the service's own schema (no model needed for that), in
# both modes; an operation that takes no input has nothing to get wrong, so no negative mode.
CASES = sorted(
    (method.upper(), path, mode)
    for path, methods in create_app(Settings()).openapi()["paths"].items()
    for method, spec in methods.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or spec.get("parameters") or spec.get("requestBody")
)


@pytest.fixture
def api_schema(models_dir):
    # schemathesis starts the app's lifespan at the first call (the model loads once per test)
    # on its own event loop, keeps it for every generated call, and ends it with the test.
    settings = Settings(
        models_dir=models_dir, model_name=MODEL_NAME, poll_seconds=0, store_url=fresh_store_url()
    )
    app = create_app(settings)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_5xx_and_every_answer_matches_the_schema(api_schema, method, path, mode):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate()

    check()
