"""Helpers shared by the route modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from ...errors import ValidationError
from ..auth import Principal
from ..idempotency import IDEMPOTENT_REPLAYED_HEADER
from ..schemas import utc_representable

if TYPE_CHECKING:
    from ..router import PaymentsRouter

IDEMPOTENCY_HEADER = "Idempotency-Key"


async def idempotent(
    payments: PaymentsRouter,
    request: Request,
    principal: Principal,
    handler: Callable[[], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    """Run a creating POST once per ``Idempotency-Key``; replay its stored response after that."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        status, body = await handler()
        return JSONResponse(jsonable_encoder(body), status_code=status)
    outcome = await payments.idempotency.run(
        principal=principal.subject,
        key=key,
        method=request.method,
        path=request.url.path,
        body=await request.body(),
        handler=handler,
    )
    response = JSONResponse(jsonable_encoder(outcome.body), status_code=outcome.status_code)
    if outcome.replayed:
        response.headers[IDEMPOTENT_REPLAYED_HEADER] = "true"
    return response


def require_aware(value: datetime | None, field: str) -> datetime | None:
    """Query timestamps must carry a time zone; naive ones are ambiguous."""
    if value is not None and value.tzinfo is None:
        raise ValidationError(f"{field} must include a time zone, e.g. 2026-01-01T00:00:00Z", field=field)
    if value is not None:
        try:
            utc_representable(value)
        except ValueError as exc:
            raise ValidationError(f"{field}: {exc}", field=field) from None
    return value
