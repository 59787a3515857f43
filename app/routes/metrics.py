from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import service_of

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus text format: requests and latency per route and status, the model version
    served, and the /predict batcher's batch sizes."""
    body, content_type = service_of(request).metrics.render()
    return Response(body, media_type=content_type)
