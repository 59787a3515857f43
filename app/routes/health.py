from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.deps import service_of
from app.schemas import ModelRef
from app.status_schemas import FoldInProgress, Health, Readiness, StoreStatus

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Alive: the process answers."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(request: Request) -> Readiness | JSONResponse:
    """Ready: a model is loaded and serving (503 until then, saying why versions were refused)."""
    service = service_of(request)
    versions, store = service.versions, service.events.status()
    fold_in = service.events.fold_in()
    refused = versions.refusals()  # e.g. newer ones not swapped to
    problems = versions.problems()
    if versions.served is None:
        body = {
            "status": "no model loaded",
            "model": None,
            "store": store,
            "refused": refused,
            "fold_in": fold_in,
            "problems": problems,
        }
        return JSONResponse(body, status_code=503)
    loaded = versions.served.loaded
    model = ModelRef(name=loaded.name, version=loaded.version)
    return Readiness(
        status="ready",
        model=model,
        store=StoreStatus(**store),
        refused=refused,
        fold_in=[FoldInProgress(**p) for p in fold_in],
        problems=problems,
    )
