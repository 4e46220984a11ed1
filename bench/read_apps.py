"""The three apps ``read_path.py`` serves with uvicorn: the library, the same reads by hand, and
those hand-written reads behind the library's API surface.

``uvicorn --app-dir bench read_apps:library_app --factory`` (and ``read_apps:baseline_app``,
``read_apps:surface_app``), with ``BENCH_DATABASE_URL`` and ``BENCH_JWT_SECRET`` in the
environment.

* ``library_app``: the library mounted at ``/billing``.
* ``baseline_app``: what a user would write without the library, doing the same work per
  request: verify the HS256 bearer JWT (subject, expiry, roles), find the customer by its external
  id (inserting it on first use), read the rows, answer JSON with the same fields. Five routes;
  the lists declare one query parameter, ``limit``.
* ``surface_app``: the same hand-written endpoints (``HandWritten``: the same engine, sessions,
  JWT check and statements as the baseline's) placed in the library's route table. It walks the
  routes of a ``PaymentsRouter`` built with the library app's settings (never started: it opens
  no database) and registers each, in order and with the same methods, at ``/billing`` + its
  path: on a router included with ``prefix="/billing"``, as ``library_app`` includes the library
  (FastAPI walks an included router's routes through the inclusion, which costs more per request
  than the same routes added to the app itself). The measured routes get the hand-written
  endpoints, ``/health`` too (the servers' readiness probe); every other route gets an endpoint
  that answers ``{}`` and is never called. The lists declare the library's query parameters
  (same names, types, defaults and constraints, compared with the library's routes when the app
  is built) and apply in SQL the filters a request gives (a ``cursor`` is refused: the
  hand-written lists answer one page).

The surface app separates the cost of the library's API surface (FastAPI matching a request
against ~47 routes in order instead of 5, and validating the 7 or 8 query parameters a list
declares instead of one) from the library's own per-request work: library / surface is what the
library's code costs beyond its surface, surface / baseline what the surface costs by itself.
"""

import base64
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from fastapi_cashier import PaymentsRouter, PaymentsSettings
from fastapi_cashier.statuses import PaymentStatus

DATABASE_ENV = "BENCH_DATABASE_URL"
SECRET_ENV = "BENCH_JWT_SECRET"  # noqa: S105 - the name of a variable, not a secret
PREFIX = "/billing"

#: The fields of a payment in the library's listings (``PaymentOut``), in its order.
PAYMENT_COLUMNS = (
    "id",
    "status",
    "amount",
    "currency",
    "refunded_amount",
    "provider",
    "provider_payment_id",
    "reference",
    "description",
    "method",
    "payment_method_summary",
    "failure_code",
    "failure_message",
    "customer_id",
    "created_at",
)


def library_settings() -> PaymentsSettings:
    """Every setting at its default but the database and key."""
    return PaymentsSettings(
        environment="test",
        database={"url": os.environ[DATABASE_ENV], "create_tables": False},
        auth={"jwt_secret": os.environ[SECRET_ENV]},
        webhooks={"retry_loop": False},
    )


def library_app() -> FastAPI:
    """The library mounted at ``/billing``."""
    app = FastAPI()
    payments = PaymentsRouter(library_settings())
    app.include_router(payments, prefix=PREFIX)
    # For read_profile.py, which counts statements on the engine (available once started).
    app.state.bench_engine = lambda: payments.engine.sync_engine
    return app


# ------------------------------------------------------------------------------ hand-written


@dataclass(frozen=True)
class Filters:
    """The filters of a payment list a request gives, applied in SQL as the library applies them."""

    status: PaymentStatus | None = None
    provider: str | None = None
    reference: str | None = None
    customer_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def conditions(self, payments: sa.TableClause) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = []
        if self.status is not None:
            conditions.append(payments.c.status == self.status.value)
        if self.provider is not None:
            conditions.append(payments.c.provider == self.provider)
        if self.reference is not None:
            conditions.append(payments.c.reference == self.reference)
        if self.customer_id is not None:
            conditions.append(payments.c.customer_id == self.customer_id)
        if self.created_after is not None:
            conditions.append(payments.c.created_at >= utc(self.created_after, "created_after"))
        if self.created_before is not None:
            conditions.append(payments.c.created_at < utc(self.created_before, "created_before"))
        return conditions


def utc(value: datetime, field: str) -> sa.ColumnElement[datetime]:
    """``value`` as a UTC bound parameter (SQLite stores the UTC wall time); naive ones refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise HTTPException(422, f"{field} must include a time zone")
    return sa.literal(value.astimezone(UTC), sa.DateTime(timezone=True))


def no_cursor(cursor: str | None) -> None:
    """The hand-written lists answer one page: a cursor is refused rather than ignored."""
    if cursor is not None:
        raise HTTPException(400, "the hand-written endpoints do not paginate")


class HandWritten:
    """The hand-written endpoints' engine, sessions and JWT check, and the work of each read.

    ``baseline_app`` and ``surface_app`` each build one and register its endpoints: ``me`` and
    ``health`` as they are; the lists through thin endpoints of each app's own that only declare
    the query parameters and call ``customer_payments`` / ``all_payments``.
    """

    def __init__(self) -> None:
        self.engine = create_async_engine(os.environ[DATABASE_ENV])
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        secret = os.environ[SECRET_ENV]
        self.customers = sa.table(
            "cashier_customers",
            sa.column("id", sa.Uuid()),
            sa.column("external_id"),
            sa.column("email"),
            sa.column("name"),
            sa.column("created_at"),
            sa.column("updated_at"),
            sa.column("metadata", sa.JSON()),
        )
        # Typed as the library's columns are, so the answers are the same on every database (on
        # SQLite, ids with dashes and timestamps as ISO 8601 with their UTC offset, not the
        # stored text): read_path.py checks that before it measures.
        typed = {"id": sa.Uuid(), "customer_id": sa.Uuid(), "created_at": sa.DateTime(timezone=True)}
        self.payments = sa.table(
            "cashier_payments",
            *(sa.column(name, typed.get(name)) for name in PAYMENT_COLUMNS),
        )

        def claims(request: Request) -> dict[str, Any]:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer":
                raise HTTPException(401, "missing bearer token")
            try:
                decoded: dict[str, Any] = jwt.decode(
                    token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
                )
            except jwt.PyJWTError as exc:
                raise HTTPException(401, "invalid token") from exc
            return decoded

        self.claims = claims

        async def me(token: Annotated[dict[str, Any], Depends(claims)]) -> dict[str, Any]:
            async with self.sessions() as session:
                row = await self.customer_row(session, token["sub"])
            return {"id": str(row.id), "external_id": row.external_id, "email": row.email, "name": row.name}

        async def health() -> dict[str, str]:
            return {"status": "ok"}

        self.me = me
        self.health = health

    async def customer_row(self, session: AsyncSession, subject: str) -> sa.Row[Any]:
        customers = self.customers
        select = sa.select(customers.c.id, customers.c.external_id, customers.c.email, customers.c.name)
        found = (await session.execute(select.where(customers.c.external_id == subject))).first()
        if found is not None:
            return found
        now = datetime.now(UTC).replace(tzinfo=None)
        values = {
            "id": uuid.uuid4(),
            "external_id": subject,
            "metadata": {},
            "created_at": now,
            "updated_at": now,
        }
        try:
            await session.execute(sa.insert(customers).values(values))
            await session.commit()
        except IntegrityError:
            await session.rollback()
        return (await session.execute(select.where(customers.c.external_id == subject))).one()

    def newest(self, limit: int, filters: Filters | None) -> sa.Select[Any]:
        payments = self.payments
        columns = [payments.c[name] for name in PAYMENT_COLUMNS]
        # One row more than the page: whether there is a next page, as the library answers it.
        select = (
            sa.select(*columns).order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(limit + 1)
        )
        if filters is not None and (conditions := filters.conditions(payments)):
            select = select.where(*conditions)
        return select

    async def customer_payments(
        self, token: dict[str, Any], limit: int, filters: Filters | None = None
    ) -> dict[str, Any]:
        """``GET /payments``: the token's customer (created on first use), then its newest payments."""
        async with self.sessions() as session:
            customer = await self.customer_row(session, token["sub"])
            select = self.newest(limit, filters).where(self.payments.c.customer_id == customer.id)
            rows = (await session.execute(select)).all()
        return page_json(rows, limit)

    async def all_payments(
        self, token: dict[str, Any], limit: int, filters: Filters | None = None
    ) -> dict[str, Any]:
        """``GET /admin/payments``: the newest payments of every customer, for the admin role."""
        if "admin" not in token.get("roles", []):
            raise HTTPException(403, "admin role required")
        async with self.sessions() as session:
            rows = (await session.execute(self.newest(limit, filters))).all()
        return page_json(rows, limit)


def page_json(rows: Sequence[sa.Row[Any]], limit: int) -> dict[str, Any]:
    """A page of payments; ``next_cursor`` (the last row's time and id) when there are more rows."""
    items = [payment_json(row) for row in rows[:limit]]
    cursor = None
    if len(rows) > limit:
        last = items[-1]
        cursor = base64.urlsafe_b64encode(f"{last['created_at']}|{last['id']}".encode()).decode()
    return {"items": items, "next_cursor": cursor}


def payment_json(row: sa.Row[Any]) -> dict[str, Any]:
    item = dict(row._mapping)
    item["id"] = str(item["id"])
    item["customer_id"] = str(item["customer_id"])
    created = item["created_at"]
    item["created_at"] = (created if created.tzinfo else created.replace(tzinfo=UTC)).isoformat()
    return item


def baseline_app() -> FastAPI:
    """Hand-written FastAPI + SQLAlchemy endpoints over the library's tables."""
    hand = HandWritten()
    app = FastAPI()
    app.state.bench_engine = lambda: hand.engine.sync_engine
    Claims = Annotated[dict[str, Any], Depends(hand.claims)]

    async def list_payments(token: Claims, limit: int = 20) -> dict[str, Any]:
        return await hand.customer_payments(token, limit)

    async def admin_payments(token: Claims, limit: int = 20) -> dict[str, Any]:
        return await hand.all_payments(token, limit)

    app.get("/me")(hand.me)
    app.get("/payments")(list_payments)
    app.get("/admin/payments")(admin_payments)
    app.get("/health")(hand.health)
    return app


# ------------------------------------------------------------------------------ the library's surface


def declared_query(route: APIRoute) -> list[tuple[str, Any, Any, list[Any]]]:
    """(name, type, default, constraints) of each query parameter ``route`` declares, in order."""
    return [
        (field.alias, field.field_info.annotation, field.field_info.default, list(field.field_info.metadata))
        for field in route.dependant.query_params
    ]


def surface_app() -> FastAPI:
    """``baseline_app``'s endpoints in the library's route table, with the library's query parameters."""
    hand = HandWritten()
    Claims = Annotated[dict[str, Any], Depends(hand.claims)]

    # The query parameters of the library's ``GET /payments`` (payments:list, routes/customers.py).
    async def list_payments(
        token: Claims,
        status: PaymentStatus | None = None,
        provider: Annotated[str | None, Query(max_length=40)] = None,
        reference: Annotated[str | None, Query(max_length=255)] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        no_cursor(cursor)
        filters = Filters(status, provider, reference, None, created_after, created_before)
        return await hand.customer_payments(token, limit, filters)

    # The query parameters of the library's ``GET /admin/payments`` (payments:admin_list, routes/admin.py).
    async def admin_payments(
        token: Claims,
        status: PaymentStatus | None = None,
        provider: Annotated[str | None, Query(max_length=40)] = None,
        reference: Annotated[str | None, Query(max_length=255)] = None,
        customer_id: uuid.UUID | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        no_cursor(cursor)
        filters = Filters(status, provider, reference, customer_id, created_after, created_before)
        return await hand.all_payments(token, limit, filters)

    async def unused() -> dict[str, Any]:
        """Every other route of the library: there only so that matching walks the same table."""
        return {}

    hand_written: dict[tuple[str, str], Callable[..., Any]] = {
        ("/health", "GET"): hand.health,  # the servers' readiness probe
        ("/me", "GET"): hand.me,
        ("/payments", "GET"): list_payments,
        ("/admin/payments", "GET"): admin_payments,
    }
    library = PaymentsRouter(library_settings())  # its routes only: never started, no database
    table = APIRouter()
    served: set[tuple[str, str]] = set()
    for route in library.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"a library route of an unexpected kind: {route!r}")
        methods = sorted(route.methods or ())
        key = (route.path, methods[0]) if len(methods) == 1 else None
        endpoint = hand_written.get(key, unused) if key is not None else unused
        table.add_api_route(route.path, endpoint, methods=methods, name=route.name)
        added = table.routes[-1]
        if key is not None and endpoint is not unused and isinstance(added, APIRoute):
            served.add(key)
            if declared_query(added) != declared_query(route):
                raise RuntimeError(
                    f"{key}: the hand-written endpoint declares {declared_query(added)}, "
                    f"the library {declared_query(route)}"
                )
    if served != set(hand_written):
        raise RuntimeError(f"the library has no route for {sorted(set(hand_written) - served)}")
    app = FastAPI()
    app.include_router(table, prefix=PREFIX)  # as library_app includes the router
    app.state.bench_engine = lambda: hand.engine.sync_engine
    return app
