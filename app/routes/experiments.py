"""Online experiments between versions, behind the admin token (RECSYS_ADMIN_TOKEN; unset:
404): start one, read its report, end it (the report stays), list them."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from app.admin_schemas import ExperimentList, ExperimentReport
from app.deps import admin
from app.events import online
from app.experiments import report
from app.experiments.spec import NAME_PATTERN, Experiment, ExperimentBody
from app.schemas import error_responses
from app.state import ServiceState

router = APIRouter(prefix="/admin/experiments", tags=["admin"])
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="letters, digits, '.', '_', '-'")]
ADMIN_ERRORS = {
    **error_responses(401, 503),
    404: {"description": "no such experiment or version; or no admin token is set"},
}


async def report_of(service: ServiceState, experiment: Experiment) -> dict[str, Any]:
    """Its report: the answers given while it ran, counted in the store."""
    until = experiment.ended or time.time() + 1
    window = service.settings.attribution_window
    served = service.versions.served
    n_items = served.loaded.n_items if served else 0
    if experiment.method == "interleave":
        found = await service.events.query(
            lambda conn: online.interleaved(
                conn, experiment.name, experiment.started, until, window
            )
        )
        return report.interleave(experiment, found)
    counts, users = await service.events.query(
        lambda conn: (
            online.groups(conn, experiment.started, until, window),
            online.per_user(conn, experiment.name, experiment.started, until, window),
        )
    )
    return report.ab(experiment, counts, users, n_items)


@router.put(
    "/{name}",
    response_model=ExperimentReport,
    responses={
        **ADMIN_ERRORS,
        **error_responses(400, 413),
        409: {"description": "another experiment runs, or this one ran"},
    },
)
async def start_experiment(name: Name, body: ExperimentBody, request: Request) -> dict[str, Any]:
    """Start an experiment (every worker and replica follows within RECSYS_SYNC_SECONDS); the
    same design again answers it as it runs."""
    service = admin(request)
    experiment = await service.experiments.put(name, body)
    return await report_of(service, experiment)


@router.get("/{name}", response_model=ExperimentReport, responses=ADMIN_ERRORS)
async def experiment_report(name: Name, request: Request) -> dict[str, Any]:
    """Per variant its online metrics; the difference of hit rates with its 95% interval and
    p-value; the winner, or null while the interval holds 0."""
    service = admin(request)
    return await report_of(service, service.experiments.get(name))


@router.delete("/{name}", response_model=ExperimentReport, responses=ADMIN_ERRORS)
async def end_experiment(name: Name, request: Request) -> dict[str, Any]:
    """End it: its users go back to the default version; its report stays."""
    service = admin(request)
    return await report_of(service, await service.experiments.end(name))


@router.get("", response_model=ExperimentList, responses=ADMIN_ERRORS)
async def list_experiments(request: Request) -> dict[str, Any]:
    """Every experiment the store holds, running and ended, newest first."""
    known = admin(request).experiments.known.values()
    return {"experiments": [e.public() for e in sorted(known, key=lambda e: -e.started)]}
