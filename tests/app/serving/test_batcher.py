"""The /predict batcher on the real exported SavedModel: same numbers as unbatched calls, batches
bounded in size, the first request's wait bounded by the timeout."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from app.serving.batcher import PredictBatcher
from app.serving.loader import load_version
from tests.helpers import MODEL_NAME, make_client, sample


@pytest.fixture(scope="module")
def bundle(version_dir):
    return load_version(version_dir)


def requests_for(bundle, count: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    rng = np.random.default_rng(seed)
    users, items = list(bundle.user_index), bundle.item_ids
    out = []
    for _ in range(count):
        size = int(rng.integers(1, 9))
        out.append(
            (
                [users[i] for i in rng.integers(0, len(users), size)],
                [items[i] for i in rng.integers(0, len(items), size)],
            )
        )
    return out


def run_batched(bundle, requests, max_batch_size=4096, timeout_s=0.0):
    sizes: list[tuple[int, int]] = []

    async def main():
        batcher = PredictBatcher(
            bundle.predict_ratings, max_batch_size, timeout_s, lambda r, n: sizes.append((r, n))
        )
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.predict_async(u, i) for u, i in requests))
        finally:
            await batcher.cancel()

    return asyncio.run(main()), sizes


def test_batched_equals_unbatched_and_coalesces(bundle):
    requests = requests_for(bundle, 60)
    results, sizes = run_batched(bundle, requests)
    for (users, items), got in zip(requests, results, strict=True):
        np.testing.assert_allclose(got, bundle.predict_ratings(users, items), rtol=1e-6)
    assert sum(n for _, n in sizes) == sum(len(u) for u, _ in requests)
    assert sum(r for r, _ in sizes) == len(requests)
    assert max(r for r, _ in sizes) > 1  # requests really were coalesced
    assert len(sizes) < len(requests)


def test_batches_never_exceed_the_max_size(bundle):
    requests = requests_for(bundle, 40, seed=3)
    results, sizes = run_batched(bundle, requests, max_batch_size=10)
    assert all(n <= 10 for _, n in sizes)
    for (users, items), got in zip(requests, results, strict=True):
        np.testing.assert_allclose(got, bundle.predict_ratings(users, items), rtol=1e-6)


@pytest.mark.parametrize("timeout_s", [0.0, 0.2])
def test_a_lone_request_waits_at_most_the_timeout(bundle, timeout_s):
    started = time.perf_counter()
    (result,), sizes = run_batched(bundle, requests_for(bundle, 1), timeout_s=timeout_s)
    waited = time.perf_counter() - started
    assert sizes == [(1, len(result))]
    assert timeout_s <= waited < timeout_s + 2.0  # generous: a shared CI machine


def test_a_failing_call_fails_every_caller_in_its_batch():
    def broken(users, items):
        raise RuntimeError("model exploded")

    async def main():
        batcher = PredictBatcher(broken, 100, 0.0)
        batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.predict_async(["u"], ["i"]) for _ in range(5)), return_exceptions=True
            )
        finally:
            await batcher.cancel()

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)


@pytest.mark.parametrize("batching", [True, False])
def test_predict_answers_the_same_with_batching_on_and_off(models_dir, bundle, batching):
    (users, items), *_ = requests_for(bundle, 1, seed=5)
    body = {"instances": [{"user_id": u, "item_id": i} for u, i in zip(users, items, strict=True)]}
    with make_client(
        models_dir=models_dir, model_name=MODEL_NAME, predict_batching=batching
    ) as client:
        assert (client.app.state.service.versions.served.batcher is not None) == batching
        response = client.post("/predict", json=body)
    assert response.status_code == 200
    np.testing.assert_allclose(
        response.json()["predictions"], bundle.predict_ratings(users, items), atol=1e-5
    )


def test_only_small_requests_are_coalesced(models_dir, bundle):

    (users, items), *_ = requests_for(bundle, 1, seed=7)
    pair = {"user_id": users[0], "item_id": items[0]}
    with make_client(models_dir=models_dir, model_name=MODEL_NAME, predict_batch_below=3) as c:
        big = c.post("/predict", json={"instances": [pair] * 3})
        small = c.post("/predict", json={"instances": [pair] * 2})
        text = c.get("/metrics").text
    assert big.status_code == small.status_code == 200
    assert big.json()["predictions"][0] == small.json()["predictions"][0]
    assert sample(text, "recsys_predict_batch_instances_count") == 1  # the small one only
    assert sample(text, "recsys_predict_batch_instances_sum") == 2


def test_drain_answers_everything_queued_before_it_and_returns(bundle):
    """drain() arriving while a batch is being formed (its marker taken from the queue mid-batch)
    must still end the worker: a model swap waits on it."""
    requests = requests_for(bundle, 20, seed=11)

    async def main():
        batcher = PredictBatcher(bundle.predict_ratings, 4096, 0.0)
        batcher.start()
        # Scheduled together: the 20 requests and drain() all enqueue before the worker wakes,
        # so it meets drain()'s marker while gathering the first batch.
        pending = [asyncio.ensure_future(batcher.predict_async(u, i)) for u, i in requests]
        draining = asyncio.ensure_future(batcher.drain())
        await asyncio.wait_for(draining, timeout=10)
        return await asyncio.gather(*pending)

    results = asyncio.run(main())
    for (users, items), got in zip(requests, results, strict=True):
        np.testing.assert_allclose(got, bundle.predict_ratings(users, items), rtol=1e-6)
