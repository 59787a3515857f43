"""Run-time version control, behind a bearer token (RECSYS_ADMIN_TOKEN; unset: 404)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, HTTPException, Path, Request

from app.deps import settings_of
from app.versions import NoSuchVersion, VersionRefused

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)


def _authorise(request: Request) -> None:
    token = settings_of(request).admin_token
    if token is None:
        raise HTTPException(404, "Not Found")
    given = request.headers.get("authorization", "")
    expected = "Bearer " + token.get_secret_value()
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


def _serving(request: Request) -> dict:
    active, manager = request.app.state.active, request.app.state.manager
    model = {"name": active.bundle.name, "version": active.bundle.version} if active else None
    return {"model": model, "pinned": manager.pinned}


@router.post("/reload")
async def reload(request: Request) -> dict:
    """Unpin, forget refused versions, and serve the newest version that loads."""
    _authorise(request)
    changed = await request.app.state.manager.unpin_and_check()
    return {"changed": changed, **_serving(request)}


@router.post("/models/{version}")
async def activate(request: Request, version: int = Path(ge=1)) -> dict:
    """Serve `version` (roll back or forward) and pin it: polling no longer moves off it."""
    _authorise(request)
    try:
        await request.app.state.manager.activate(version, pin=True)
    except NoSuchVersion as err:
        raise HTTPException(404, str(err)) from None
    except VersionRefused as err:
        reason = request.app.state.manager.public(str(err))
        raise HTTPException(409, f"version {version} refused: {reason}") from None
    return {"changed": True, **_serving(request)}
