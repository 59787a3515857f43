"""POST /events as a raw ASGI handler: the write hot path, outside FastAPI's request machinery.

Under 32 connections of single-event writes, FastAPI's routing, body parsing (Python's `json`,
then pydantic on the objects) and dependency solving took about half of the event loop's time
(bench/README.md, "Ingestion"). `FastEvents`, an innermost middleware beside `FastRecommend`,
reads the body itself, validates it with pydantic straight from the JSON bytes (in Rust, one
step), and then runs the route's own checks and write (`app.routes.events.checked` and
`stored`), so both paths check, store and count the same way.

A request it does not take plainly goes on to the declared route, the body replayed, where
FastAPI validates and answers: a body pydantic refuses, a content type other than JSON, too
many events or a rating off the scale (FastAPI's 422 in its own words). Nothing is stored or
charged before that hand-over. The service's own errors (a missing or wrong write token, an
unknown item, a quota spent, the store unavailable) are answered here as the route's handler
answers them, and never handed on: a quota is not charged twice, a write not tried twice. A
test checks that both paths answer the same bytes, and store the same rows, for the same bodies.
"""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.deps import writable
from app.errors import ServiceError
from app.event_schemas import EventsRequest
from app.responses import send_json
from app.routes.events import checked, router, stored

PATH = "/events"
(DECLARED,) = [r for r in router.routes if isinstance(r, APIRoute) and r.path == PATH]


def plain_json(scope: Scope) -> bool:
    """The route's path and method, with a body declared `application/json` (FastAPI decides
    what a missing or another JSON type means)."""
    if scope["method"] != "POST" or scope["path"] != PATH or scope.get("root_path"):
        return False
    declared = next((v for k, v in scope["headers"] if k == b"content-type"), None)
    if declared is None:
        return False
    kind: bytes = declared.split(b";", 1)[0].strip().lower()
    return kind == b"application/json"


class FastEvents:
    """Pure ASGI middleware, innermost: POST /events with a valid JSON body is checked, stored
    and answered here; every other request, and any this one does not take plainly, goes on to
    `app` (the routes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not plain_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replay = _replaying(messages, receive)
        body = None
        if messages[-1]["type"] == "http.request":  # else the client went away: the route sees it
            try:
                body = EventsRequest.model_validate_json(b"".join(chunks))
            except ValidationError:
                pass
        if body is None:
            await self.app(scope, replay, send)
            return
        request = Request(scope, replay)
        scope["route"] = DECLARED  # what the metrics and the access log name it by
        try:
            await writable(request)
            service, ratings = checked(request, body)
            answer = (await stored(service, ratings)).model_dump_json().encode()
        except RequestValidationError:
            await self.app(scope, replay, send)  # FastAPI's 422, in its own words
            return
        except ServiceError as err:
            await err.send(send)  # as the route's handler answers it
            return
        await send_json(send, answer)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` with the messages already read given back first, in order."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
