"""JSON answers from raw ASGI code (the hot paths, middleware refusals, `ServiceError.send`)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Send


async def send_json(
    send: Send, body: bytes, status: int = 200, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send `body` (JSON bytes) whole, with its type, length and any further `headers`."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
