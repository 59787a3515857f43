"""Run-time version control, behind a bearer token (RECSYS_ADMIN_TOKEN; unset: 404)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request

from app.deps import admin
from app.serving.versions import VersionOwner

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)


def _authorised(request: Request) -> VersionOwner[Any]:
    """The version owner, once the caller's bearer token matches (compared in constant time)."""
    return admin(request).versions


def _serving(versions: VersionOwner[Any]) -> dict[str, Any]:
    served = versions.served
    model = {"name": served.loaded.name, "version": served.loaded.version} if served else None
    return {"model": model, "pinned": versions.pinned}


@router.post("/reload")
async def reload(request: Request) -> dict[str, Any]:
    """Unpin, forget refused versions, and serve the newest version that loads (every worker:
    the others at their next version poll)."""
    versions = _authorised(request)
    changed = await versions.unpin_and_swap()
    return {"changed": changed, **_serving(versions)}


@router.post("/models/{version}")
async def activate(request: Request, version: int = Path(ge=1)) -> dict[str, Any]:
    """Serve `version` (roll back or forward) and pin it: polling no longer moves off it. Every
    worker follows at its next version poll, and a restart keeps the pin."""
    versions = _authorised(request)
    await versions.pin(version)  # 404 NoSuchVersion, 409 VersionRefused
    return {"changed": True, **_serving(versions)}
