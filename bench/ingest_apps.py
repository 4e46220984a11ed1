"""The two apps ``webhook_workers.py`` serves with ``uvicorn --workers N``: the library and the floor.

``uvicorn --app-dir bench ingest_apps:library_app --factory`` and ``ingest_apps:floor_app``, with
``BENCH_DATABASE_URL`` and ``BENCH_WEBHOOK_SECRET`` in the environment.

* ``library_app``: ``PaymentsRouter`` at ``/billing`` with the fake provider (its webhook secret
  from the environment), the retry loop off and the pool sized for a worker of several.
* ``floor_app``: ``POST /ingest`` reads the raw body, INSERTs it into ``bench_raw_events`` and
  commits, on an engine from the library's own ``create_engine`` (same driver, pool, recycle).

Every answer carries ``X-Worker-Pid``, so the driver can tell that all workers are up.
"""

import os
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_cashier import PaymentsRouter, PaymentsSettings
from fastapi_cashier.db.engine import create_engine
from fastapi_cashier.settings import DatabaseSettings

DATABASE_ENV = "BENCH_DATABASE_URL"
SECRET_ENV = "BENCH_WEBHOOK_SECRET"  # noqa: S105 - the name of a variable, not a secret
JWT_SECRET = "bench-jwt-secret-long-enough-for-hs256-tokens"  # noqa: S105 - never used to sign
PID_HEADER = "X-Worker-Pid"
POOL_SIZE = 5
MAX_OVERFLOW = 5

floor_metadata = sa.MetaData()
raw_events = sa.Table(
    "bench_raw_events",
    floor_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
)


class WorkerPid:
    """Pure ASGI middleware adding the serving process's id to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (PID_HEADER.lower().encode(), str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_pid)


class _Settings(PaymentsSettings):
    """``PaymentsSettings`` from keyword arguments only: no ``PAYMENTS_*`` and no ``.env``."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def library_app() -> FastAPI:
    settings = _Settings(
        environment="test",
        database={
            "url": os.environ[DATABASE_ENV],
            "create_tables": False,
            "pool_size": POOL_SIZE,
            "max_overflow": MAX_OVERFLOW,
        },
        auth={"jwt_secret": JWT_SECRET},
        fake={"webhook_secret": os.environ[SECRET_ENV], "auto_deliver": False},
        webhooks={"retry_loop": False},
        default_provider="fake",
    )
    app = FastAPI()
    app.include_router(PaymentsRouter(settings), prefix="/billing")
    app.add_middleware(WorkerPid)
    return app


def floor_app() -> FastAPI:
    engine = create_engine(
        DatabaseSettings(url=os.environ[DATABASE_ENV], pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW)
    )
    app = FastAPI()

    @app.post("/ingest")
    async def ingest(request: Request) -> dict[str, Any]:
        body = await request.body()
        async with engine.begin() as connection:
            await connection.execute(raw_events.insert().values(received_at=datetime.now(UTC), body=body))
        return {"received": True, "status": "stored"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(WorkerPid)
    return app
