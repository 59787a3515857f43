"""413 for oversized request bodies, as JSON, before the body is read in full.

FastAPI's own `max_body_size` answers a declared oversized body in plain text; every error of
this service is JSON with a `detail`, so this pure ASGI middleware does the job instead: a
`Content-Length` above the limit is refused before reading a byte, and a chunked body is counted
as it arrives and refused the moment it passes the limit.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.responses import send_json


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            # No route here reads a GET's body (the hot path pays nothing for this check).
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        seen, refused, started = 0, False, False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    # Answer now; the app sees the client go away and whatever it then tries
                    # to send is dropped.
                    refused = True
                    await self._refuse(send, None)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not refused:
                started = started or message["type"] == "http.response.start"
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send, size: int | None) -> None:
        what = f"request body of {size:,} bytes" if size is not None else "request body"
        body = orjson.dumps({"detail": f"{what} is over the {self.max_bytes:,}-byte limit"})
        await send_json(send, body, 413)
