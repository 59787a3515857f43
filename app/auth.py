"""Bearer tokens: RECSYS_ADMIN_TOKEN for /admin/*, RECSYS_WRITE_TOKEN for the write routes."""

from __future__ import annotations

import secrets

from fastapi import Request
from pydantic import SecretStr

from app.errors import Unauthorized


def require_bearer(request: Request, token: SecretStr) -> None:
    """The request must carry `Authorization: Bearer <token>` (compared in constant time).

    Raises:
        Unauthorized: missing or wrong (401 with `WWW-Authenticate: Bearer`).
    """
    given = request.headers.get("authorization", "")
    expected = "Bearer " + token.get_secret_value()
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized()
