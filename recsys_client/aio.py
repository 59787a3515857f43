"""`AsyncClient`: `Client` for asyncio, the same methods awaited, the same calls, retry rule and
batching (`recsys_client.calls`, `recsys_client.batches`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, cast

import httpx

from recsys_client import batches, calls
from recsys_client import models as m
from recsys_client.calls import By, Call, Filters, Id, Retry
from recsys_client.client import _Base
from recsys_client.errors import RecsysError, Unavailable

T = TypeVar("T")


class AsyncClient(_Base):
    """The same as `Client`, for asyncio: `async with AsyncClient(url) as client: await
    client.recommend(196)`."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ):
        super().__init__(base_url, api_key=api_key, token=token, timeout=timeout, retry=retry)
        self.http = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )
        self.sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def run(self, call: Call[T]) -> T:
        """Send `call`, retrying it where it is safe (`Retry`)."""
        attempt = 0
        while True:
            try:
                try:
                    response = await self.http.request(**self._request(call))
                except httpx.TransportError as err:
                    raise Unavailable(0, f"{call.method} {call.path}: {err!r}") from err
                return self._answer(call, response)
            except RecsysError as err:
                wait = self.retry.delay(call, attempt, err)
                if wait is None:
                    raise
                await self.sleep(wait)
                attempt += 1

    async def recommend(
        self,
        user_id: Id,
        n: int = 10,
        *,
        exclude_seen: bool | None = None,
        by: By | None = None,
        fallback: bool | None = None,
        diversity: float | None = None,
        explain: bool | None = None,
        filters: Filters | None = None,
    ) -> m.RecommendResponse:
        return await self.run(
            calls.recommend(
                user_id,
                n,
                exclude_seen=exclude_seen,
                by=by,
                fallback=fallback,
                diversity=diversity,
                explain=explain,
                filters=filters,
            )
        )

    async def recommend_many(
        self,
        user_ids: Iterable[Id],
        n: int = 10,
        *,
        exclude_seen: bool | None = None,
        by: By | None = None,
        fallback: bool | None = None,
        diversity: float | None = None,
        filters: Filters | None = None,
    ) -> m.RecommendBatchResponse:
        return await self.run(
            calls.recommend_many(
                user_ids,
                n,
                exclude_seen=exclude_seen,
                by=by,
                fallback=fallback,
                diversity=diversity,
                filters=filters,
            )
        )

    async def predict(self, pairs: Iterable[tuple[Id, Id]]) -> m.PredictResponse:
        return await self.run(calls.predict(pairs))

    async def similar(
        self,
        item_id: Id,
        n: int = 10,
        *,
        user_id: Id | None = None,
        filters: Filters | None = None,
    ) -> m.SimilarResponse:
        return await self.run(calls.similar(item_id, n, user_id=user_id, filters=filters))

    async def rank(
        self,
        user_id: Id,
        item_ids: Iterable[Id],
        *,
        by: By | None = None,
        fallback: bool | None = None,
        explain: bool | None = None,
    ) -> m.RankResponse:
        return await self.run(
            calls.rank(user_id, item_ids, by=by, fallback=fallback, explain=explain)
        )

    async def popular(
        self,
        n: int = 10,
        *,
        window: str | None = None,
        user_id: Id | None = None,
        filters: Filters | None = None,
    ) -> m.PopularResponse:
        return await self.run(calls.popular(n, window=window, user_id=user_id, filters=filters))

    async def item(self, item_id: Id) -> m.CatalogueItem:
        return await self.run(calls.item(item_id))

    async def search_items(self, q: str, n: int | None = None) -> m.ItemSearch:
        return await self.run(calls.search_items(q, n))

    async def genres(self) -> m.Genres:
        return await self.run(calls.genres())

    async def user_ratings(
        self, user_id: Id, *, limit: int | None = None, offset: int | None = None
    ) -> m.UserRatings:
        return await self.run(calls.user_ratings(user_id, limit=limit, offset=offset))

    async def models(self) -> m.ModelInfo:
        return await self.run(calls.models())

    async def ready(self) -> m.Readiness:
        return await self.run(calls.ready())

    async def health(self) -> m.Health:
        return await self.run(calls.health())

    async def send_events(
        self,
        events: Iterable[m.Event | Mapping[str, Any]],
        *,
        batch_size: int | None = None,
        progress: batches.Progress | None = None,
        skip_invalid: bool = False,
    ) -> batches.EventsSummary:
        """As `Client.send_events`."""
        limit = batch_size or await self._limit()
        steps = batches.plan(events, limit, skip_invalid, progress)
        try:
            call = next(steps)
            while True:
                try:
                    answer = await self.run(call)
                except RecsysError as err:
                    call = steps.throw(err)
                else:
                    call = steps.send(answer)
        except StopIteration as done:
            return cast(batches.EventsSummary, done.value)

    async def _limit(self) -> int:
        if self._events_limit is None:
            self._events_limit = calls.events_limit(await self.run(calls.openapi()))
        return self._events_limit

    async def put_item(
        self,
        item_id: Id,
        *,
        title: str | None = None,
        genres: list[str] | None = None,
        year: int | None = None,
    ) -> m.ItemInfo:
        return await self.run(calls.put_item(item_id, title=title, genres=genres, year=year))

    async def forget_user(self, user_id: Id) -> m.Forgotten:
        return await self.run(calls.forget_user(user_id))

    async def reload(self) -> dict[str, Any]:
        return await self.run(calls.reload())

    async def pin_version(self, version: int) -> dict[str, Any]:
        return await self.run(calls.pin_version(version))

    async def put_experiment(
        self,
        name: str,
        method: Literal["ab", "interleave"],
        variants: Mapping[str, int],
        split: Mapping[str, float] | None = None,
    ) -> m.ExperimentReport:
        return await self.run(calls.put_experiment(name, method, variants, split))

    async def experiment(self, name: str) -> m.ExperimentReport:
        return await self.run(calls.experiment(name))

    async def end_experiment(self, name: str) -> m.ExperimentReport:
        return await self.run(calls.end_experiment(name))

    async def experiments(self) -> m.ExperimentList:
        return await self.run(calls.experiments())

    async def online(self, window: str | None = None, buckets: int | None = None) -> m.Online:
        return await self.run(calls.online(window, buckets))
