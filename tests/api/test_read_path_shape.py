"""The read path's shortcuts: routes served one level deep, UUID columns read as stored text."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.routing import APIRoute
from sqlalchemy.dialects import mysql, postgresql, sqlite

from fastapi_cashier import PaymentsRouter, PaymentsSettings
from fastapi_cashier.api.router import _plain_routes
from fastapi_cashier.api.routes._common import PAYMENT_LIST_COLUMNS, UuidForValidation
from fastapi_cashier.db.base_repository import Repository, decode_cursor
from fastapi_cashier.db.models import Payment


def _router(prefix: str = "") -> APIRouter:
    router = APIRouter(prefix=prefix)

    @router.get("/one")
    async def one() -> None: ...

    return router


def test_plain_inclusions_are_resolved_to_their_routes_in_order() -> None:
    inner = _router()
    outer = APIRouter()
    outer.include_router(_router())
    middle = APIRouter()
    middle.include_router(inner)
    outer.include_router(middle)
    flat = _plain_routes(outer)
    assert flat is not None
    assert [type(route) for route in flat] == [APIRoute, APIRoute]
    assert flat[1] is inner.routes[0] or getattr(flat[1], "path", None) == "/one"


def test_an_inclusion_with_a_prefix_of_its_own_is_left_to_fastapi() -> None:
    outer = APIRouter()
    outer.include_router(_router(), prefix="/elsewhere")
    flat = _plain_routes(outer)
    # FastAPI versions that copy routes at inclusion give prefixed routes; the grouping ones
    # keep the inclusion, which only FastAPI can serve.
    assert flat is None or [getattr(route, "path", None) for route in flat] == ["/elsewhere/one"]


def test_the_payments_router_serves_its_own_routes_without_nesting() -> None:
    settings = PaymentsSettings(
        environment="test",
        database={"url": "sqlite+aiosqlite:///:memory:"},
        auth={"jwt_secret": "a-test-secret-that-is-long-enough-for-hs256"},
    )
    payments = PaymentsRouter(settings)
    names = [getattr(route, "name", None) for route in payments.routes]
    assert "payments:list" in names
    assert "payments:admin_list" in names
    assert all(isinstance(route, APIRoute) for route in payments.routes)


def test_uuid_columns_are_read_as_text_only_where_the_database_stores_text() -> None:
    column_type = UuidForValidation()
    for text_dialect in (sqlite.dialect(), mysql.dialect()):
        assert isinstance(column_type.load_dialect_impl(text_dialect), sa.String)
        # No Python conversion of the stored hex text: pydantic-core parses it.
        assert column_type.dialect_impl(text_dialect).result_processor(text_dialect, None) is None
    assert isinstance(column_type.load_dialect_impl(postgresql.dialect()), sa.Uuid)
    listed = {column.key: column for column in PAYMENT_LIST_COLUMNS}
    assert isinstance(listed["id"].type, UuidForValidation)
    assert isinstance(listed["customer_id"].type, UuidForValidation)


class _PaymentRows(Repository[Payment]):
    model_type = Payment


class _Row:
    def __init__(self, row_id: object, created_at: object) -> None:
        self.id = row_id
        self.created_at = created_at


def test_a_page_of_rows_with_text_ids_gets_the_same_cursor() -> None:
    from datetime import UTC, datetime

    row_id = uuid.uuid4()
    when = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    repository = _PaymentRows(session=None)  # type: ignore[arg-type]
    as_text = repository._page([_Row(row_id.hex, when), _Row(uuid.uuid4().hex, when)], 1)
    as_uuid = repository._page([_Row(row_id, when), _Row(uuid.uuid4(), when)], 1)
    assert as_text.next_cursor == as_uuid.next_cursor
    assert as_text.next_cursor is not None
    assert decode_cursor(as_text.next_cursor) == (when, row_id)
