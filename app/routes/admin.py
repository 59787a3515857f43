"""Run-time version control, behind a bearer token (RECSYS_ADMIN_TOKEN; unset: 404)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Path, Request

from app.deps import service_of
from app.errors import AdminDisabled, Unauthorized
from app.serving.versions import VersionOwner

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)


def _authorised(request: Request) -> VersionOwner:
    """The version owner, once the caller's bearer token matches (compared in constant time)."""
    service = service_of(request)
    token = service.settings.admin_token
    if token is None:
        raise AdminDisabled()
    given = request.headers.get("authorization", "")
    expected = "Bearer " + token.get_secret_value()
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized()
    return service.versions


def _serving(versions: VersionOwner) -> dict[str, Any]:
    served = versions.served
    model = {"name": served.loaded.name, "version": served.loaded.version} if served else None
    return {"model": model, "pinned": versions.pinned}


@router.post("/reload")
async def reload(request: Request) -> dict[str, Any]:
    """Unpin, forget refused versions, and serve the newest version that loads."""
    versions = _authorised(request)
    changed = await versions.unpin_and_swap()
    return {"changed": changed, **_serving(versions)}


@router.post("/models/{version}")
async def activate(request: Request, version: int = Path(ge=1)) -> dict[str, Any]:
    """Serve `version` (roll back or forward) and pin it: polling no longer moves off it."""
    versions = _authorised(request)
    await versions.serve_version(version, pin=True)  # 404 NoSuchVersion, 409 VersionRefused
    return {"changed": True, **_serving(versions)}
