"""The three apps ``peer_compare.py`` serves with uvicorn: the library, the fastapi-payments package,
and the hand-written endpoints of ``read_apps.baseline_app``.

``uvicorn --app-dir bench peer_apps:library_app --factory`` and ``peer_apps:hand_written_app``
run with the library's interpreter; ``peer_apps:peer_app`` with an interpreter that can import
``fastapi_payments`` (a separate virtual environment, see ``bench/README.md``). All read
``BENCH_DATABASE_URL`` (and the library and the hand-written app ``BENCH_JWT_SECRET``). This
module imports none of them at import time, so either interpreter can load it.

The three apps get the same additions, and nothing else:

* a guard that refuses any outgoing connection to an address outside 127.0.0.0/8 and ``::1``
  (a request that tried to reach a provider would fail with 500, and the benchmark stops on any
  answer other than 2xx); neither app's measured routes makes one, the guard proves it;
* ``/_bench/counting`` (``POST`` with ``on=true|false``, ``GET`` to read): statement,
  ``BEGIN`` and ``COMMIT`` counters from SQLAlchemy engine events, switched on only for the
  untimed counting requests, so the timed rounds run without listeners;
* ``/_bench/profile`` (``POST`` with ``on=true|false`` and ``path``): a cProfile of the server
  process over untimed requests, its call count and its stats file.

The peer is served as its README's quick start sets it up (``FastAPIPayments(config)``, its
router at ``/payments``) plus the ``initialize_dependencies(config)`` call the quick start lacks
(without it every route answers 500, "Dependencies not initialized"), with two changes the
benchmark documents and can switch off (``BENCH_PEER_AS_SHIPPED=1``): one PaymentService per
request (:func:`share_nothing`, without which it fails under concurrent requests) and, on
PostgreSQL, timezone-aware timestamp columns (:func:`aware_timestamps`, without which its create
answers 400).

``python bench/peer_apps.py seed-peer URL CUSTOMERS PAYMENTS`` creates the peer's tables and seeds
them, with the peer's interpreter (the library's side is seeded by ``peer_compare.py``).
"""

from __future__ import annotations

import asyncio
import copy
import cProfile
import ipaddress
import os
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI

DATABASE_ENV = "BENCH_DATABASE_URL"
#: ``1``: serve the peer as shipped (one PaymentService for all requests, see :func:`peer_app`).
PEER_AS_SHIPPED_ENV = "BENCH_PEER_AS_SHIPPED"
#: ``1``: make the peer's timestamp columns ``TIMESTAMP WITH TIME ZONE`` (for PostgreSQL, see
#: :func:`aware_timestamps`).
PEER_AWARE_ENV = "BENCH_PEER_AWARE_TIMESTAMPS"
PEER_PREFIX = "/payments"
PEER_PROVIDER = "payu"


def loopback_only() -> None:
    """Make every outgoing socket connection to a non-loopback IP address fail at once."""
    if getattr(socket.socket, "_bench_guarded", False):
        return
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                allowed = ipaddress.ip_address(host).is_loopback
            except ValueError:
                allowed = host == "localhost"
            if not allowed:
                raise ConnectionRefusedError(f"benchmark guard: no connection to {host!r} (loopback only)")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return original_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign, assignment]
    socket.socket._bench_guarded = True  # type: ignore[attr-defined]


def add_counters(app: FastAPI) -> None:
    """``/_bench/counting``: statements, BEGINs and COMMITs sent while counting is on."""
    counts = {"statements": 0, "begins": 0, "commits": 0}

    def on_statement(*_args: Any) -> None:
        counts["statements"] += 1

    def on_begin(*_args: Any) -> None:
        counts["begins"] += 1

    def on_commit(*_args: Any) -> None:
        counts["commits"] += 1

    listeners = (("before_cursor_execute", on_statement), ("begin", on_begin), ("commit", on_commit))

    @app.post("/_bench/counting", include_in_schema=False)
    async def switch(on: bool) -> dict[str, int]:
        for name, listener in listeners:
            present = sa.event.contains(sa.engine.Engine, name, listener)
            if on and not present:
                sa.event.listen(sa.engine.Engine, name, listener)
            elif not on and present:
                sa.event.remove(sa.engine.Engine, name, listener)
        if on:
            counts.update(statements=0, begins=0, commits=0)
        return counts

    @app.get("/_bench/counting", include_in_schema=False)
    async def read() -> dict[str, int]:
        return counts

    profiler: list[cProfile.Profile] = []

    @app.post("/_bench/profile", include_in_schema=False)
    async def profile(on: bool, path: str = "") -> dict[str, int]:
        """Start a cProfile of this server process, or stop it, write it to ``path``, count its calls."""
        if on:
            profiler[:] = [cProfile.Profile()]
            profiler[0].enable()
            return {"calls": 0}
        running = profiler.pop()
        running.disable()
        if path:
            running.dump_stats(path)
        import pstats

        return {"calls": pstats.Stats(running).total_calls}  # type: ignore[attr-defined]


def with_additions(factory: str) -> FastAPI:
    """``read_apps.<factory>()`` with the loopback guard and the ``/_bench`` probes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import read_apps

    loopback_only()
    app: FastAPI = getattr(read_apps, factory)()
    add_counters(app)
    return app


def library_app() -> FastAPI:
    """``read_apps.library_app`` (the library at ``/billing``, default settings) with the two additions."""
    return with_additions("library_app")


def hand_written_app() -> FastAPI:
    """``read_apps.baseline_app`` (hand-written, over the library's tables) with the two additions."""
    return with_additions("baseline_app")


def peer_config(database_url: str) -> dict[str, Any]:
    """The peer's configuration: the local database, its PayU provider, the in-memory broker.

    PayU is the peer's one built-in provider whose ``create_customer`` makes no API call (it
    makes up a ``payu_<hex>`` id); the default, Stripe, calls Stripe's API through its SDK. The
    in-memory broker keeps the event publisher from needing a Redis server (the measured routes
    publish nothing).
    """
    return {
        "providers": {PEER_PROVIDER: {"api_key": "bench-key", "api_secret": "bench-salt"}},
        "default_provider": PEER_PROVIDER,
        "database": {"url": database_url},
        "messaging": {"broker_type": "memory"},
        "logging_level": "WARNING",
    }


def peer_app() -> FastAPI:
    """fastapi-payments as its quick start sets it up, its router at ``/payments``, plus ``/health``."""
    from fastapi_payments import FastAPIPayments
    from fastapi_payments.api.dependencies import initialize_dependencies

    loopback_only()
    if os.environ.get(PEER_AWARE_ENV) == "1":
        aware_timestamps()
    module = FastAPIPayments(peer_config(os.environ[DATABASE_ENV]))
    # FastAPIPayments only stores the configuration: without this call, which the peer's quick
    # start leaves out, every route answers 500 ("Dependencies not initialized").
    initialize_dependencies(module.config)
    app = FastAPI()
    module.include_router(app, prefix=PEER_PREFIX)
    if os.environ.get(PEER_AS_SHIPPED_ENV) != "1":
        share_nothing(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    add_counters(app)
    return app


def aware_timestamps() -> None:
    """Declare every ``DateTime`` column of the peer's models with ``timezone=True``.

    The peer's models declare ``DateTime`` columns (``TIMESTAMP WITHOUT TIME ZONE``) whose
    defaults are timezone-aware datetimes (``default=datetime.now(timezone.utc)``, evaluated once
    at import). SQLite stores them; asyncpg refuses them ("can't subtract offset-naive and
    offset-aware datetimes"), so on PostgreSQL the peer's ``POST /customers`` answers 400 for
    every request. With this, the same code runs and the columns are ``timestamptz``.
    """
    from fastapi_payments.db.models import Base

    for table in Base.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, sa.DateTime):
                column.type.timezone = True


def share_nothing(app: FastAPI) -> None:
    """Give each request a PaymentService of its own (a shallow copy of the peer's one instance).

    As shipped, every route gets the same process-wide PaymentService, on which the dependency
    sets the request's database session (``set_db_session``): two requests in flight share one
    session, and the peer answers 500 or drops the connection ("This session is provisioning a
    new connection; concurrent operations are not permitted"). This override is what a user
    would have to add to serve concurrent requests; it costs a ``copy.copy`` per request and
    keeps the rest (providers, configuration, repositories, routes) as shipped.
    """
    from fastapi_payments.api.dependencies import get_payment_service, get_payment_service_with_db
    from fastapi_payments.db.repositories import get_db

    async def payment_service_of_the_request(
        shared: Any = Depends(get_payment_service), session: Any = Depends(get_db)
    ) -> Any:
        own = copy.copy(shared)
        own.set_db_session(session)
        return own

    app.dependency_overrides[get_payment_service_with_db] = payment_service_of_the_request


async def seed_peer(database_url: str, customers: int, payments: int) -> None:
    """The peer's tables with ``customers`` customers (each linked to PayU) and ``payments`` of the first."""
    from fastapi_payments.db.models import Base, Customer, Payment, PaymentStatus, ProviderCustomer
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    aware = os.environ.get(PEER_AWARE_ENV) == "1"
    if aware:
        aware_timestamps()
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        now = datetime.now(UTC)
        start = (now if aware else now.replace(tzinfo=None)) - timedelta(days=1)
        async with async_sessionmaker(engine)() as session:
            rows = [
                Customer(
                    email=f"customer-{index}@example.com",
                    name=f"Customer {index}",
                    meta_info={},
                    created_at=start + timedelta(seconds=index),
                    updated_at=start + timedelta(seconds=index),
                )
                for index in range(customers)
            ]
            session.add_all(rows)
            await session.flush()
            for index, row in enumerate(rows):
                session.add(
                    ProviderCustomer(
                        customer_id=row.id, provider=PEER_PROVIDER, provider_customer_id=f"payu_bench_{index}"
                    )
                )
            for index in range(payments):
                session.add(
                    Payment(
                        customer_id=rows[0].id,
                        provider=PEER_PROVIDER,
                        provider_payment_id=f"pay_bench_{index}",
                        status=PaymentStatus.COMPLETED,
                        amount=10.00 + index / 100,
                        currency="EUR",
                        refunded_amount=0.0,
                        payment_method="card",
                        meta_info={"reference": f"order-{index}"},
                        created_at=start + timedelta(seconds=index),
                        updated_at=start + timedelta(seconds=index),
                    )
                )
            owner = rows[0].id
            await session.commit()
            print(owner)  # the customer the payments belong to, for peer_compare.py
    finally:
        await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "seed-peer":
        raise SystemExit("usage: peer_apps.py seed-peer DATABASE_URL CUSTOMERS PAYMENTS")
    asyncio.run(seed_peer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
