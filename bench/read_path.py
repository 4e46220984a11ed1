"""Read-path throughput of fastapi-cashier against hand-written endpoints doing the same work.

For each database (a SQLite file always; PostgreSQL when a URL is given, in a scratch database
created and dropped here) the script seeds one customer with ``--payments`` payments, starts three
real uvicorn servers on 127.0.0.1 (``read_apps.py``):

* library: the library mounted at ``/billing``;
* baseline: the same reads written by hand with FastAPI + SQLAlchemy, five routes, the lists
  declaring only ``limit``;
* surface: the baseline's hand-written endpoints placed in the library's route table (every
  route of the library, in order, at the same paths; the ones not measured answer ``{}``) and
  declaring the library's query parameters. It has the library's API surface and the baseline's
  per-request work, so it separates what the surface costs (FastAPI matching ~47 routes in order,
  validating 7 or 8 declared query parameters) from what the library's own code costs.

Before measuring an endpoint, it asks each app the same request and stops unless the answers
are the same (ids and timestamps compared by value). It then drives each app with a bounded
async httpx load loop:

* ``GET /payments?limit=50`` for the known customer;
* ``GET /me`` for a known subject, and for a new subject on every request (a customer insert);
* an admin list, ``GET /admin/payments?limit=50``.

Rounds take the apps in turn, the order rotating every round (baseline, library, surface; then
library, surface, baseline; ...). Per endpoint the report gives three ratios of requests/s, each
the median over rounds of the per-round ratios (listed beside it): library/baseline (the
headline), library/surface (the library's own work, the surface being equal) and surface/baseline
(the cost of the surface alone). For each app it also gives p50/p99 latency, server
CPU-milliseconds per request (from ``/proc``), the statements and transactions one request sends
(SQLAlchemy events, measured in-process on the same apps) and, on PostgreSQL, the transactions
per request that ``pg_stat_database`` counted during the first round.

This is a benchmark, not a test: it asserts nothing about speed. Run ``--help`` for options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from fastapi_cashier.api.auth import create_token
from fastapi_cashier.db import create_engine, create_session_factory, create_tables
from fastapi_cashier.db.models import Customer, Payment
from fastapi_cashier.settings import AuthSettings, DatabaseSettings
from fastapi_cashier.statuses import PaymentStatus

BENCH_DIR = Path(__file__).resolve().parent
JWT_SECRET = "bench-jwt-secret-long-enough-for-hs256-tokens"  # noqa: S105 - a throwaway key
POSTGRES_ENV = "CASHIER_BENCH_POSTGRES_URL"
KNOWN = "known-customer"


#: The apps of ``read_apps.py``: name -> (factory, health path). The order is the first round's.
APPS = {
    "baseline": ("baseline_app", "/health"),
    "library": ("library_app", "/billing/health"),
    "surface": ("surface_app", "/billing/health"),
}
#: (numerator, denominator) of the reported requests/s ratios; the first is the headline.
RATIOS = (("library", "baseline"), ("library", "surface"), ("surface", "baseline"))


@dataclass(frozen=True)
class Endpoint:
    name: str
    library_path: str
    baseline_path: str
    subject: Callable[[int], str]
    admin: bool = False

    def path(self, app: str) -> str:
        """The path ``app`` serves the endpoint at: the surface app has the library's paths."""
        return self.baseline_path if app == "baseline" else self.library_path


ENDPOINTS = (
    Endpoint("GET /payments?limit=50", "/billing/payments?limit=50", "/payments?limit=50", lambda _: KNOWN),
    Endpoint("GET /me (known)", "/billing/me", "/me", lambda _: KNOWN),
    Endpoint("GET /me (new)", "/billing/me", "/me", lambda index: f"new-{uuid.uuid4().hex}-{index}"),
    Endpoint(
        "GET /admin/payments?limit=50",
        "/billing/admin/payments?limit=50",
        "/admin/payments?limit=50",
        lambda _: "admin",
        admin=True,
    ),
)


def token(subject: str, *, admin: bool) -> str:
    return create_token(AuthSettings(jwt_secret=JWT_SECRET), subject, roles=["admin"] if admin else [])


# ------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``uvicorn read_apps:<factory>`` in a process of its own."""

    def __init__(self, factory: str, database_url: str, health: str) -> None:
        self.port = free_port()
        self.health = health
        env = {**os.environ, "BENCH_DATABASE_URL": database_url, "BENCH_JWT_SECRET": JWT_SECRET}
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), f"read_apps:{factory}"]
        command += ["--factory", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        self.process = subprocess.Popen(command, env=env)  # noqa: S603 - our own interpreter

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.health)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"the server on port {self.port} did not start")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# ------------------------------------------------------------------------------ load


@dataclass
class Round:
    requests: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


#: One request: method, path, headers, JSON body.
Request = tuple[str, str, dict[str, str], Any]


def bearer_get(path: str, tokens: Sequence[str]) -> list[Request]:
    """A ``GET path`` per token, each with that bearer token."""
    return [("GET", path, {"Authorization": f"Bearer {bearer}"}, None) for bearer in tokens]


async def drive(
    server: Server, requests: Sequence[Request], concurrency: int, *, any_success: bool = False
) -> Round:
    """Send every request, ``concurrency`` at a time; an answer other than 200 (any 2xx with
    ``any_success``) stops the run."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while queue:
                method, path, headers, body = queue.pop()
                started = time.perf_counter()
                response = await client.request(method, path, headers=headers, json=body)
                latencies.append(time.perf_counter() - started)
                if not (response.is_success if any_success else response.status_code == 200):
                    raise RuntimeError(
                        f"{method} {path} answered {response.status_code}: {response.text[:300]}"
                    )

        cpu = server.cpu_seconds()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        return Round(len(requests), seconds, latencies, server.cpu_seconds() - cpu)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# ------------------------------------------------------------------------------ database


async def seed(database_url: str, payments: int) -> None:
    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        await create_tables(engine)
        async with create_session_factory(engine)() as session:
            customer = Customer(external_id=KNOWN, email="known@example.com")
            session.add(customer)
            await session.flush()
            start = datetime.now(UTC) - timedelta(days=1)
            for index in range(payments):
                session.add(
                    Payment(
                        customer_id=customer.id,
                        provider="manual",
                        provider_payment_id=f"pay_bench_{index}",
                        status=PaymentStatus.SUCCEEDED,
                        amount=1000 + index,
                        currency="EUR",
                        refunded_amount=0,
                        description=f"bench payment {index}",
                        reference=f"order-{index}",
                        created_at=start + timedelta(seconds=index),
                    )
                )
            await session.commit()
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def scratch_postgres(admin_url: str) -> AsyncIterator[str]:
    name = f"cashier_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


async def pg_transactions(database_url: str) -> int:
    engine = create_async_engine(make_url(database_url))
    try:
        async with engine.connect() as connection:
            value = await connection.scalar(
                sa.text(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                    "WHERE datname = current_database()"
                )
            )
        return int(value or 0)
    finally:
        await engine.dispose()


async def statements_per_request(database_url: str, endpoint: Endpoint) -> dict[str, tuple[int, int]]:
    """(statements, transactions) one request sends, for each app, in-process."""
    sys.path.insert(0, str(BENCH_DIR))
    import read_apps

    os.environ["BENCH_DATABASE_URL"] = database_url
    os.environ["BENCH_JWT_SECRET"] = JWT_SECRET
    counts: dict[str, tuple[int, int]] = {}
    for label, (factory_name, _health) in APPS.items():
        factory = getattr(read_apps, factory_name)
        path = endpoint.path(label)
        statements = 0
        begins = 0

        def on_statement(*_args: Any) -> None:
            nonlocal statements
            statements += 1

        def on_begin(*_args: Any) -> None:
            nonlocal begins
            begins += 1

        sa.event.listen(sa.engine.Engine, "before_cursor_execute", on_statement)
        sa.event.listen(sa.engine.Engine, "begin", on_begin)
        app = factory()
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                    headers = {"Authorization": f"Bearer {token(endpoint.subject(1), admin=endpoint.admin)}"}
                    await client.get(path, headers=headers)  # warm: connections, first customer
                    statements = begins = 0
                    headers = {"Authorization": f"Bearer {token(endpoint.subject(2), admin=endpoint.admin)}"}
                    response = await client.get(path, headers=headers)
                    if response.status_code != 200:
                        raise RuntimeError(f"{label} {path}: {response.status_code} {response.text[:200]}")
                    counts[label] = (statements, begins)
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", on_statement)
            sa.event.remove(sa.engine.Engine, "begin", on_begin)
    return counts


# ------------------------------------------------------------------------------ run


def comparable(endpoint: Endpoint, body: Any) -> Any:
    """An answer with the ids and timestamps of its payments parsed, so that two apps' answers
    compare by value (``Z`` and ``+00:00`` are the same offset)."""
    if "items" not in body:
        return body
    items = [
        {
            **item,
            "id": uuid.UUID(item["id"]),
            "customer_id": uuid.UUID(item["customer_id"]),
            "created_at": datetime.fromisoformat(item["created_at"]),
        }
        for item in body["items"]
    ]
    # Whether there is a next page; each app writes its cursor its own way.
    return {"items": items, "next_cursor": body["next_cursor"] is not None}


async def check_same_answers(servers: dict[str, Server], endpoint: Endpoint) -> None:
    """Refuse to measure apps that do not give the same answer to the same request."""
    headers = {"Authorization": f"Bearer {token(endpoint.subject(0), admin=endpoint.admin)}"}
    answers = {}
    for name, server in servers.items():
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            response = await client.get(endpoint.path(name), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{name} {endpoint.name}: {response.status_code} {response.text[:200]}")
        answers[name] = comparable(endpoint, response.json())
    first, *others = answers
    for name in others:
        if answers[name] != answers[first]:
            raise RuntimeError(f"{endpoint.name}: {name} answers differently from {first}")


def rotated(names: Sequence[str], index: int) -> list[str]:
    """``names`` starting at position ``index`` (modulo its length): round ``index``'s order."""
    shift = index % len(names)
    return [*names[shift:], *names[:shift]]


async def run_database(label: str, database_url: str, options: argparse.Namespace) -> list[str]:
    await seed(database_url, options.payments)
    servers = {name: Server(factory, database_url, health) for name, (factory, health) in APPS.items()}
    lines = []
    try:
        await asyncio.gather(*(server.ready() for server in servers.values()))
        for endpoint in ENDPOINTS:
            await check_same_answers(servers, endpoint)
            counts = await statements_per_request(database_url, endpoint)
            rounds: dict[str, list[Round]] = {name: [] for name in APPS}
            warm = [token(endpoint.subject(i), admin=endpoint.admin) for i in range(options.concurrency * 2)]
            for name, server in servers.items():
                await drive(server, bearer_get(endpoint.path(name), warm), options.concurrency)
            pg_per_request: dict[str, float] = {}
            for index in range(options.rounds):
                for name in rotated(list(APPS), index):
                    tokens = [
                        token(endpoint.subject(i), admin=endpoint.admin) for i in range(options.requests)
                    ]
                    before = (
                        await pg_transactions(database_url) if label == "postgresql" and index == 0 else 0
                    )
                    requests = bearer_get(endpoint.path(name), tokens)
                    rounds[name].append(await drive(servers[name], requests, options.concurrency))
                    if label == "postgresql" and index == 0:
                        await asyncio.sleep(1.5)  # statistics reach pg_stat_database within a second
                        # The two reads of the counter are transactions of their own.
                        pg_per_request[name] = (
                            await pg_transactions(database_url) - before - 1
                        ) / options.requests
            for name in APPS:
                done = rounds[name]
                latencies = [value for one in done for value in one.latencies]
                rps = statistics.median(one.per_second for one in done)
                cpu_ms = 1000 * sum(one.cpu_seconds for one in done) / sum(one.requests for one in done)
                statements, begins = counts[name]
                pg = f"  pg_stat xact/req {pg_per_request[name]:.2f}" if name in pg_per_request else ""
                p50, p99 = (1000 * percentile(latencies, share) for share in (0.5, 0.99))
                lines.append(
                    f"{label:10} {endpoint.name:30} {name:8} {rps:7.0f} req/s  p50 {p50:7.2f} ms"
                    f"  p99 {p99:8.2f} ms  cpu {cpu_ms:5.2f} ms/req"
                    f"  stmts/req {statements}  begins/req {begins}{pg}"
                )
            for top, bottom in RATIOS:
                ratios = [
                    one.per_second / other.per_second
                    for one, other in zip(rounds[top], rounds[bottom], strict=True)
                ]
                lines.append(
                    f"{label:10} {endpoint.name:30} {top + '/' + bottom:16} {statistics.median(ratios):.3f} "
                    f"(rounds: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
                )
    finally:
        for server in servers.values():
            server.stop()
    return lines


async def main_async(options: argparse.Namespace) -> None:
    print(
        f"read path: {options.requests} requests per round, {options.rounds} rounds, "
        f"concurrency {options.concurrency}, {options.payments} payments seeded"
    )
    print(f"load at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as directory:
        for line in await run_database("sqlite", f"sqlite+aiosqlite:///{directory}/bench.db", options):
            print(line, flush=True)
    if options.postgres:
        async with scratch_postgres(options.postgres) as url:
            for line in await run_database("postgresql", url, options):
                print(line, flush=True)
    print(f"load at end: {os.getloadavg()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per app per round (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument(
        "--payments", type=int, default=60, help="payments of the known customer (default 60)"
    )
    parser.add_argument(
        "--postgres", default=os.environ.get(POSTGRES_ENV), help=f"server URL (default ${POSTGRES_ENV})"
    )
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
