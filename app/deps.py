"""Dependencies as annotated aliases, so handlers read like their signatures.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, a
hop that cost more than the whole top-N computation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import ModelNotReady
from app.registry import Bundle
from app.settings import Settings


async def get_bundle(request: Request) -> Bundle:
    bundle = request.app.state.bundle
    if bundle is None:
        raise ModelNotReady("no model loaded yet; see the service log for why")
    return bundle


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


BundleDep = Annotated[Bundle, Depends(get_bundle)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
