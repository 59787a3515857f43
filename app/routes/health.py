from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.schemas import Health, ModelRef, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Alive: the process answers."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(request: Request):
    """Ready: a model is loaded and serving (503 until then, saying why versions were refused)."""
    active, manager = request.app.state.active, request.app.state.manager
    refused = manager.refusals() if manager is not None else {}  # e.g. newer ones not swapped to
    if active is None:
        body = {"status": "no model loaded", "model": None, "refused": refused}
        return JSONResponse(body, status_code=503)
    bundle = active.bundle
    model = ModelRef(name=bundle.name, version=bundle.version)
    return Readiness(status="ready", model=model, refused=refused)
