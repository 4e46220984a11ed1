"""Helpers shared by the route modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter

from ...db.base import Base
from ...db.base_repository import Page as RowPage
from ...db.models import Payment
from ...errors import ValidationError
from ...settings import origin_of
from ..auth import Principal
from ..idempotency import IDEMPOTENT_REPLAYED_HEADER
from ..schemas import Page, utc_representable
from ..schemas.payments import PaymentOut

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


def check_redirect(payments: PaymentsRouter, request: Request, url: str | None, field: str) -> None:
    """Refuse a URL the payer would be sent to that is not on an allowed origin (no open redirect).

    Allowed: the origin of the request the router serves, and ``settings.allowed_redirect_origins``.

    Raises:
        ValidationError: ``field`` names the refused URL.
    """
    if url is None:
        return
    allowed = {origin_of(payments.base_url(request)), *payments.settings.allowed_redirect_origins}
    if origin_of(url) not in allowed:
        listed = ", ".join(sorted(origin for origin in allowed if origin is not None))
        raise ValidationError(
            f"{field} must be on an allowed origin ({listed}); add its origin to "
            "allowed_redirect_origins (PAYMENTS_ALLOWED_REDIRECT_ORIGINS) to allow it",
            field=field,
        )


class UuidForValidation(sa.types.TypeDecorator[Any]):
    """A UUID column read for a schema that validates it: stored text is handed over as it is.

    Where the database has no UUID type, ``sa.Uuid`` stores 32 hexadecimal digits and parses
    each value into a :class:`uuid.UUID` in Python; the schema's validator (pydantic-core) parses
    that text itself and refuses what is not a UUID, so the first parse is skipped. Where the
    database has a UUID type, the value is read as ``sa.Uuid`` reads it.
    """

    impl = sa.Uuid
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.supports_native_uuid:
            return dialect.type_descriptor(sa.Uuid())
        return dialect.type_descriptor(sa.String(32))


def columns_for(model: type[Base], schema: type[BaseModel]) -> tuple[Any, ...]:
    """The columns of ``model`` that ``schema`` shows, one per field, by name.

    Enum columns are read as their text: the schema's validator turns it into the member (in
    pydantic-core) and refuses a value the enum does not have, as the column type would. UUID
    columns are read as their stored text where that is text (:class:`UuidForValidation`).
    """
    columns: list[Any] = []
    for name in schema.model_fields:
        column = getattr(model, name)
        if isinstance(column.type, sa.Enum):
            column = sa.type_coerce(column, sa.String()).label(name)
        elif isinstance(column.type, sa.Uuid):
            column = sa.type_coerce(column, UuidForValidation()).label(name)
        columns.append(column)
    return tuple(columns)


#: What the payment listings read, and how they answer it.
PAYMENT_LIST_COLUMNS = columns_for(Payment, PaymentOut)
PAYMENT_PAGE: TypeAdapter[Page[PaymentOut]] = TypeAdapter(Page[PaymentOut])


def page_response(adapter: TypeAdapter[Any], page: RowPage[Any]) -> Response:
    """A page of rows as JSON, validated and dumped once by pydantic-core.

    The bytes are those the route's ``response_model`` would render (same model, same
    serialiser, compact separators, UTF-8), without building the validated models as Python
    dicts and encoding them a second time; the route keeps its ``response_model`` for the
    OpenAPI document.
    """
    page_model = adapter.validate_python(
        {"items": page.items, "next_cursor": page.next_cursor}, from_attributes=True
    )
    return Response(adapter.dump_json(page_model), media_type="application/json")
