"""Dynamic batching for /predict: concurrent requests are coalesced into one SavedModel call
(`app.batching.Batcher` over the instances of each request)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.batching import Batcher
from app.serving.predictors import PredictFn  # user ids, item ids -> ratings

Pairs = tuple[list[str], list[str]]  # one request's user ids and item ids


class PredictBatcher(Batcher[Pairs, np.ndarray]):
    def __init__(
        self,
        predict: PredictFn,
        max_batch_size: int,
        timeout_s: float,
        on_batch: Callable[[int, int], None] | None = None,
    ):
        """`max_batch_size` bounds the instances of one SavedModel call."""

        def run(requests: list[Pairs]) -> list[np.ndarray]:
            ratings = predict(
                [u for r in requests for u in r[0]], [i for r in requests for i in r[1]]
            )
            ends = np.cumsum([len(r[0]) for r in requests])
            return np.split(ratings, ends[:-1])

        # A lone request runs on the loop: the hop to the thread and back cost ~0.2 ms of a
        # ~1 ms /predict at one connection, its p95 above batching off's (bench/README.md).
        # Whatever arrives meanwhile forms the next batch, which goes to the thread.
        super().__init__(
            run, lambda r: len(r[0]), max_batch_size, timeout_s, on_batch, "predict", True
        )

    async def predict_async(self, user_ids: list[str], item_ids: list[str]) -> np.ndarray:
        """The ratings for these pairs, computed in some batch with other callers' pairs."""
        return await self.submit((user_ids, item_ids))
