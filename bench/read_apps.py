"""The two apps ``read_path.py`` serves with uvicorn: the library, and the same reads by hand.

``uvicorn --app-dir bench read_apps:library_app --factory`` and ``read_apps:baseline_app``, with
``BENCH_DATABASE_URL`` and ``BENCH_JWT_SECRET`` in the environment. The baseline is what a user
would write without the library, doing the same work per request: verify the HS256 bearer JWT
(subject, expiry, roles), find the customer by its external id (inserting it on first use),
read the rows, answer JSON with the same fields.
"""

import os
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from fastapi_cashier import PaymentsRouter, PaymentsSettings

DATABASE_ENV = "BENCH_DATABASE_URL"
SECRET_ENV = "BENCH_JWT_SECRET"  # noqa: S105 - the name of a variable, not a secret

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
    "created_at",
)


def library_app() -> FastAPI:
    """The library mounted at ``/billing``, every setting at its default but the database and key."""
    settings = PaymentsSettings(
        environment="test",
        database={"url": os.environ[DATABASE_ENV], "create_tables": False},
        auth={"jwt_secret": os.environ[SECRET_ENV]},
        webhooks={"retry_loop": False},
    )
    app = FastAPI()
    payments = PaymentsRouter(settings)
    app.include_router(payments, prefix="/billing")
    # For read_profile.py, which counts statements on the engine (available once started).
    app.state.bench_engine = lambda: payments.engine.sync_engine
    return app


def baseline_app() -> FastAPI:
    """Hand-written FastAPI + SQLAlchemy endpoints over the library's tables."""
    engine = create_async_engine(os.environ[DATABASE_ENV])
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    secret = os.environ[SECRET_ENV]
    app = FastAPI()
    app.state.bench_engine = lambda: engine.sync_engine
    customers = sa.table(
        "cashier_customers",
        sa.column("id", sa.Uuid()),
        sa.column("external_id"),
        sa.column("email"),
        sa.column("name"),
        sa.column("created_at"),
        sa.column("updated_at"),
        sa.column("metadata", sa.JSON()),
    )
    payments = sa.table("cashier_payments", *(sa.column(name) for name in (*PAYMENT_COLUMNS, "customer_id")))

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

    Claims = Annotated[dict[str, Any], Depends(claims)]

    async def customer_row(session: AsyncSession, subject: str) -> sa.Row[Any]:
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

    def payment_json(row: sa.Row[Any]) -> dict[str, Any]:
        item = dict(row._mapping)
        item["id"] = str(item["id"])
        created = item["created_at"]
        if isinstance(created, datetime):
            item["created_at"] = (created if created.tzinfo else created.replace(tzinfo=UTC)).isoformat()
        return item

    def newest(limit: int) -> sa.Select[Any]:
        columns = [payments.c[name] for name in PAYMENT_COLUMNS]
        return sa.select(*columns).order_by(payments.c.created_at.desc(), payments.c.id.desc()).limit(limit)

    @app.get("/me")
    async def me(token: Claims) -> dict[str, Any]:
        async with sessions() as session:
            row = await customer_row(session, token["sub"])
        return {"id": str(row.id), "external_id": row.external_id, "email": row.email, "name": row.name}

    @app.get("/payments")
    async def list_payments(token: Claims, limit: int = 20) -> dict[str, Any]:
        async with sessions() as session:
            customer = await customer_row(session, token["sub"])
            rows = (await session.execute(newest(limit).where(payments.c.customer_id == customer.id))).all()
        return {"items": [payment_json(row) for row in rows], "next_cursor": None}

    @app.get("/admin/payments")
    async def admin_payments(token: Claims, limit: int = 20) -> dict[str, Any]:
        if "admin" not in token.get("roles", []):
            raise HTTPException(403, "admin role required")
        async with sessions() as session:
            rows = (await session.execute(newest(limit))).all()
        return {"items": [payment_json(row) for row in rows], "next_cursor": None}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
