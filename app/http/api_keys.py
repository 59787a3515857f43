"""API keys (RECSYS_API_KEY): with keys set, every request needs one, as
`Authorization: Bearer <key>` or `X-API-Key: <key>`, compared in constant time; the write and
admin tokens count as keys too (who holds them may read). A pure ASGI middleware inside CORS
(its refusals carry CORS headers, so a page can read them) and outside the routes and the raw
/recommend path, so nothing answers before it.

Open without a key: /health, /ready and /metrics (probes and scrapers hold no key), the page at
/ and its files under /static/ (the page asks for a key when an answer says it needs one), the
API's description (/openapi.json, /docs: no data, and Swagger UI's Authorize button sends the key
from there), and CORS preflights (a browser sends them without the key). A refusal is a 401 in
JSON with `WWW-Authenticate: Bearer` and `X-Auth-Required: api-key`, which tells the page a key
is wanted, not the write token.
"""

from __future__ import annotations

import secrets

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from app.responses import send_json

OPEN = frozenset(
    ("/health", "/ready", "/metrics", "/", "/favicon.ico", "/openapi.json", "/docs", "/redoc")
)
OPEN_PREFIXES = ("/static/", "/docs/")
DETAIL = "missing or wrong API key: send it as Authorization: Bearer <key> or X-API-Key: <key>"


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys]
        self.refusal = orjson.dumps({"detail": DETAIL})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or scope["path"] in OPEN
            or scope["path"].startswith(OPEN_PREFIXES)
            or self.allowed(scope["headers"])
        ):
            await self.app(scope, receive, send)
            return
        await send_json(
            send,
            self.refusal,
            401,
            [(b"www-authenticate", b"Bearer"), (b"x-auth-required", b"api-key")],
        )

    def allowed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        for name, value in headers:
            if name == b"x-api-key":
                given = value
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:]
            else:
                continue
            # Every key compared, each in constant time: the answer's timing says nothing of
            # which key, or how much of one, a guess got right.
            if sum(secrets.compare_digest(given, key) for key in self.keys):
                return True
        return False
