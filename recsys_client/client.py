"""`Client`: one method per route, answers parsed into the service's own models, errors raised
as `recsys_client.errors` types, safe calls retried (`AsyncClient`, in `recsys_client.aio`, is
the same for asyncio)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, cast

import httpx

from recsys_client import batches, calls
from recsys_client import models as m
from recsys_client.calls import By, Call, Filters, Id, Retry
from recsys_client.errors import RecsysError, Unavailable

T = TypeVar("T")


class _Base:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        retry: Retry | None = None,
    ):
        self.headers = {"Accept": "application/json"}
        if api_key:
            self.headers["X-API-Key"] = api_key
        if token:  # RECSYS_WRITE_TOKEN or RECSYS_ADMIN_TOKEN (each also counts as a key)
            self.headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or Retry()
        self._events_limit: int | None = None

    def _request(self, call: Call[Any]) -> dict[str, Any]:
        return {"method": call.method, "url": call.path, "params": call.params, "json": call.json}

    @staticmethod
    def _answer(call: Call[T], response: httpx.Response) -> T:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return calls.parse(call, response.status_code, body, calls.retry_after(response.headers))


class Client(_Base):
    """Blocking client: `Client("http://127.0.0.1:8000", api_key=...)`; a context manager (or
    call `close()`). Connections are pooled; `transport` is httpx's (tests pass a mock one)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(base_url, api_key=api_key, token=token, timeout=timeout, retry=retry)
        self.http = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )
        self.sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def run(self, call: Call[T]) -> T:
        """Send `call`, retrying it where it is safe (`Retry`)."""
        attempt = 0
        while True:
            try:
                try:
                    response = self.http.request(**self._request(call))
                except httpx.TransportError as err:
                    raise Unavailable(0, f"{call.method} {call.path}: {err!r}") from err
                return self._answer(call, response)
            except RecsysError as err:
                wait = self.retry.delay(call, attempt, err)
                if wait is None:
                    raise
                self.sleep(wait)
                attempt += 1

    # --- reads ----------------------------------------------------------------------------

    def recommend(
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
        return self.run(
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

    def recommend_many(
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
        return self.run(
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

    def predict(self, pairs: Iterable[tuple[Id, Id]]) -> m.PredictResponse:
        return self.run(calls.predict(pairs))

    def similar(
        self,
        item_id: Id,
        n: int = 10,
        *,
        user_id: Id | None = None,
        filters: Filters | None = None,
    ) -> m.SimilarResponse:
        return self.run(calls.similar(item_id, n, user_id=user_id, filters=filters))

    def rank(
        self,
        user_id: Id,
        item_ids: Iterable[Id],
        *,
        by: By | None = None,
        fallback: bool | None = None,
        explain: bool | None = None,
    ) -> m.RankResponse:
        return self.run(calls.rank(user_id, item_ids, by=by, fallback=fallback, explain=explain))

    def popular(
        self,
        n: int = 10,
        *,
        window: str | None = None,
        user_id: Id | None = None,
        filters: Filters | None = None,
    ) -> m.PopularResponse:
        return self.run(calls.popular(n, window=window, user_id=user_id, filters=filters))

    def item(self, item_id: Id) -> m.CatalogueItem:
        return self.run(calls.item(item_id))

    def search_items(self, q: str, n: int | None = None) -> m.ItemSearch:
        return self.run(calls.search_items(q, n))

    def genres(self) -> m.Genres:
        return self.run(calls.genres())

    def user_ratings(
        self, user_id: Id, *, limit: int | None = None, offset: int | None = None
    ) -> m.UserRatings:
        return self.run(calls.user_ratings(user_id, limit=limit, offset=offset))

    def models(self) -> m.ModelInfo:
        return self.run(calls.models())

    def ready(self) -> m.Readiness:
        return self.run(calls.ready())

    def health(self) -> m.Health:
        return self.run(calls.health())

    # --- writes ---------------------------------------------------------------------------

    def send_events(
        self,
        events: Iterable[m.Event | Mapping[str, Any]],
        *,
        batch_size: int | None = None,
        progress: batches.Progress | None = None,
        skip_invalid: bool = False,
    ) -> batches.EventsSummary:
        """Send any number of ratings in batches of the service's limit (or `batch_size`);
        `progress(summary)` after each batch."""
        limit = batch_size or self._limit()
        steps = batches.plan(events, limit, skip_invalid, progress)
        try:
            call = next(steps)
            while True:
                try:
                    answer = self.run(call)
                except RecsysError as err:
                    call = steps.throw(err)
                else:
                    call = steps.send(answer)
        except StopIteration as done:
            return cast(batches.EventsSummary, done.value)

    def _limit(self) -> int:
        if self._events_limit is None:
            self._events_limit = calls.events_limit(self.run(calls.openapi()))
        return self._events_limit

    def put_item(
        self,
        item_id: Id,
        *,
        title: str | None = None,
        genres: list[str] | None = None,
        year: int | None = None,
    ) -> m.ItemInfo:
        return self.run(calls.put_item(item_id, title=title, genres=genres, year=year))

    def forget_user(self, user_id: Id) -> m.Forgotten:
        return self.run(calls.forget_user(user_id))

    # --- admin (RECSYS_ADMIN_TOKEN as `token`) --------------------------------------------

    def reload(self) -> dict[str, Any]:
        return self.run(calls.reload())

    def pin_version(self, version: int) -> dict[str, Any]:
        return self.run(calls.pin_version(version))

    def put_experiment(
        self,
        name: str,
        method: Literal["ab", "interleave"],
        variants: Mapping[str, int],
        split: Mapping[str, float] | None = None,
    ) -> m.ExperimentReport:
        return self.run(calls.put_experiment(name, method, variants, split))

    def experiment(self, name: str) -> m.ExperimentReport:
        return self.run(calls.experiment(name))

    def end_experiment(self, name: str) -> m.ExperimentReport:
        return self.run(calls.end_experiment(name))

    def experiments(self) -> m.ExperimentList:
        return self.run(calls.experiments())

    def online(self, window: str | None = None, buckets: int | None = None) -> m.Online:
        return self.run(calls.online(window, buckets))
