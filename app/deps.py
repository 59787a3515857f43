"""What handlers read from the app: the served version and the settings.

Plain functions called with the request, not FastAPI dependencies: solving two dependencies per
request was a measurable share of the /recommend hot path (cProfile over direct ASGI calls).
A handler reads the active version once and uses it to the end: a swap never changes the model
under a request in flight.
"""

from __future__ import annotations

from fastapi import Request

from app.errors import ModelNotReady
from app.registry import Bundle
from app.settings import Settings
from app.versions import Active


def active_of(request: Request) -> Active:
    """The served version and its batcher; 503 (ModelNotReady) while there is none."""
    active = request.app.state.active
    if active is None:
        raise ModelNotReady("no model loaded yet; see the service log for why")
    return active


def served(request: Request) -> Bundle:
    return active_of(request).bundle


def settings_of(request: Request) -> Settings:
    return request.app.state.settings
