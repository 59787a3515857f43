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
from schemathesis.specs.openapi.checks import positive_data_acceptance

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


KEY = "fuzz-key"
# With RECSYS_API_KEY set the schema says which operations take a key and that they may answer
# 401: generated requests carrying the key must pass it, requests without one must get a 401.
KEYED = sorted((method, path) for method, path, mode in CASES if mode is GenerationMode.POSITIVE)


def schema_of(models_dir, **more):
    # schemathesis starts the app's lifespan at the first call (the model loads once per test)
    # on its own event loop, keeps it for every generated call, and ends it with the test.
    settings = Settings(
        models_dir=models_dir,
        model_name=MODEL_NAME,
        poll_seconds=0,
        store_url=fresh_store_url(),
        **more,
    )
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))


@pytest.fixture
def api_schema(models_dir):
    return schema_of(models_dir)


@pytest.fixture
def keyed_schema(models_dir):
    return schema_of(models_dir, api_key=KEY)


def fuzz(operation, mode, examples: int, check) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        check(case)

    run()


# Rules across fields that JSON Schema cannot state (an A/B split sums to 1, interleaving takes
# exactly two variants and no split, the split names the variants): a schema-valid body may
# still be refused there, with a 422 naming the rule (tests/app/test_experiments.py).
ACROSS_FIELDS = {("PUT", "/admin/experiments/{name}")}


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_5xx_and_every_answer_matches_the_schema(api_schema, method, path, mode):
    skip = [positive_data_acceptance] if (method, path) in ACROSS_FIELDS else []
    fuzz(
        api_schema[path][method],
        mode,
        EXAMPLES,
        lambda case: case.call_and_validate(excluded_checks=skip),
    )


@pytest.mark.parametrize(("method", "path"), KEYED)
def test_with_api_keys_the_key_passes_and_its_absence_is_a_documented_401(
    keyed_schema, method, path
):
    operation = keyed_schema[path][method]
    open_path = "security" not in operation.definition.raw
    skip = [positive_data_acceptance] if (method, path) in ACROSS_FIELDS else []

    def with_and_without_the_key(case):
        case.call_and_validate(headers={"X-API-Key": KEY}, excluded_checks=skip)
        refused = case.call_and_validate(headers={"X-API-Key": "not-" + KEY}, excluded_checks=skip)
        assert (refused.status_code == 401) != open_path, refused.status_code

    fuzz(operation, GenerationMode.POSITIVE, EXAMPLES // 4, with_and_without_the_key)
