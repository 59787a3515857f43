"""A typed Python client for the recommendation service.

    from recsys_client import Client
    with Client("http://127.0.0.1:8000", api_key="...") as client:
        top = client.recommend(196, n=5)
        client.send_events([{"user_id": 196, "item_id": top.items[0].item_id, "rating": 5,
                             "recommendation_id": top.recommendation_id}])

Answers are the service's own pydantic models (`recsys_client.models`); errors are
`recsys_client.errors` types (`NotFound` with the unknown ids, `Invalid` with the field,
`Unauthorized`, `RateLimited` with `retry_after`, `Unavailable`). Reads and event batches (each
event given an `event_id`, so a retried batch is stored once) are retried on 503, 429 (after
its Retry-After) and failed connections, with exponential backoff and jitter (`Retry`).
"""

from recsys_client.aio import AsyncClient
from recsys_client.batches import EventsSummary, Refusal
from recsys_client.calls import Filters, Retry
from recsys_client.client import Client
from recsys_client.errors import (
    Conflict,
    Invalid,
    NotFound,
    RateLimited,
    RecsysError,
    TooLarge,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "EventsSummary",
    "Filters",
    "Invalid",
    "NotFound",
    "RateLimited",
    "RecsysError",
    "Refusal",
    "Retry",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
]
