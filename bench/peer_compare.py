"""fastapi-cashier against fastapi-payments, the other FastAPI payments package, on real uvicorn servers.

For each database (a SQLite file per package always; PostgreSQL when a URL is given, a scratch
database per package created and dropped here) the script seeds both packages with the same data
(``--customers`` customers, ``--payments`` payments of the first one), starts three uvicorn
servers on 127.0.0.1 (``peer_apps.py``): the library; the peer, with ``--peer-python``, an
interpreter that can import ``fastapi_payments``; and "hand-written", the FastAPI + SQLAlchemy
endpoints of ``read_apps.baseline_app`` on the library's database, the same work written
without the library. It drives them with the same bounded async httpx loop, in rounds that take
the sides in turn (the order rotates every round):

* list customers: the library's ``GET /admin/customers?limit=N`` against the peer's
  ``GET /customers?limit=N``;
* list payments: ``GET /admin/payments?limit=N`` against ``GET /payments?limit=N``;
* a customer's payments: ``GET /payments?limit=N`` (the token's customer) against
  ``GET /payments?customer_id=...&limit=N``;
* create a customer: ``GET /me`` for a new subject (the library creates the customer on first
  use; it has no other route that does) against ``POST /customers``.

The hand-written side serves the same requests as the library without the ``/billing`` prefix
(``/admin/payments``, ``/payments``, ``/me``); it has no list of customers, so that endpoint is
measured on the library and the peer only.

The headline per endpoint is the median over rounds of library requests/s divided by the peer's;
beside it, hand-written / peer and library / hand-written, medians of the per-round ratios.
The report also gives p50/p99, server CPU-milliseconds per request (from ``/proc``), and the
statements, BEGINs and COMMITs per request, counted inside each server over untimed sequential
requests. ``--profile DIR`` adds a cProfile of each server over untimed sequential requests:
Python calls per request, and the stats in ``DIR``.

This is a benchmark, not a test: it asserts nothing about speed. Run ``--help`` for options.
The peer is not a dependency of the project: without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import read_path
from peer_apps import PEER_AS_SHIPPED_ENV, PEER_AWARE_ENV, PEER_PREFIX
from read_path import JWT_SECRET, KNOWN, Request, Round, Server, free_port, percentile, scratch_postgres

from fastapi_cashier.api.auth import create_token
from fastapi_cashier.db import create_engine
from fastapi_cashier.db.models import Customer
from fastapi_cashier.settings import AuthSettings, DatabaseSettings

BENCH_DIR = Path(__file__).resolve().parent
PEER_PYTHON_ENV = "CASHIER_BENCH_PEER_PYTHON"
LIBRARY_PREFIX = "/billing"


#: The sides, in the order of the first round and of the report.
SIDES = ("peer", "library", "hand-written")
#: (numerator, denominator) of the reported requests/s ratios; the first is the headline.
RATIOS = (("library", "peer"), ("hand-written", "peer"), ("library", "hand-written"))


@dataclass(frozen=True)
class Endpoint:
    name: str
    library: Callable[[int], Request]
    peer: Callable[[int], Request]
    #: The same request to ``read_apps.baseline_app``; None where it has no such endpoint.
    hand_written: Callable[[int], Request] | None = None

    def makers(self) -> dict[str, Callable[[int], Request]]:
        """The request maker of each side that serves this endpoint."""
        found = {"peer": self.peer, "library": self.library, "hand-written": self.hand_written}
        return {name: maker for name, maker in found.items() if maker is not None}


def bearer(subject: str, *, admin: bool = False, email: str | None = None) -> dict[str, str]:
    value = create_token(
        AuthSettings(jwt_secret=JWT_SECRET), subject, email=email, roles=["admin"] if admin else []
    )
    return {"Authorization": f"Bearer {value}"}


def endpoints(limit: int, peer_owner: str) -> tuple[Endpoint, ...]:
    """The compared requests; ``peer_owner`` is the peer's id of the customer that has the payments."""

    def new_email(index: int) -> str:
        return f"new-{uuid.uuid4().hex}-{index}@example.com"

    def create(prefix: str) -> Callable[[int], Request]:
        def request(index: int) -> Request:
            email = new_email(index)
            return ("GET", f"{prefix}/me", bearer(email.partition("@")[0], email=email), None)

        return request

    def peer_create(index: int) -> Request:
        return ("POST", f"{PEER_PREFIX}/customers", {}, {"email": new_email(index), "name": "New Customer"})

    def admin_get(path: str, prefix: str = LIBRARY_PREFIX) -> Callable[[int], Request]:
        return lambda _: ("GET", f"{prefix}/admin{path}", bearer("admin", admin=True), None)

    def own_payments(prefix: str) -> Callable[[int], Request]:
        return lambda _: ("GET", f"{prefix}/payments?limit={limit}", bearer(KNOWN), None)

    def peer_get(path: str) -> Callable[[int], Request]:
        return lambda _: ("GET", f"{PEER_PREFIX}{path}", {}, None)

    return (
        Endpoint(
            f"list customers (limit={limit})",
            admin_get(f"/customers?limit={limit}"),
            peer_get(f"/customers?limit={limit}"),
        ),
        Endpoint(
            f"list payments (limit={limit})",
            admin_get(f"/payments?limit={limit}"),
            peer_get(f"/payments?limit={limit}"),
            admin_get(f"/payments?limit={limit}", prefix=""),
        ),
        Endpoint(
            f"a customer's payments (limit={limit})",
            own_payments(LIBRARY_PREFIX),
            peer_get(f"/payments?customer_id={peer_owner}&limit={limit}"),
            own_payments(""),
        ),
        Endpoint("create customer", create(LIBRARY_PREFIX), peer_create, create("")),
    )


# ------------------------------------------------------------------------------ servers


class AppServer(Server):
    """``uvicorn peer_apps:<factory>`` with a given interpreter (``read_path.Server``'s probes and CPU)."""

    def __init__(
        self, python: str, factory: str, database_url: str, health: str, env: dict[str, str]
    ) -> None:
        self.port = free_port()
        self.health = health
        environment = {
            **os.environ,
            **env,
            "BENCH_DATABASE_URL": database_url,
            "BENCH_JWT_SECRET": JWT_SECRET,
        }
        command = [python, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), f"peer_apps:{factory}", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        self.process = subprocess.Popen(command, env=environment)  # noqa: S603 - a chosen interpreter

    async def control(self, method: str, probe: str, **params: Any) -> dict[str, int]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=120) as client:
            response = await client.request(method, probe, params=params)
            response.raise_for_status()
            answer: dict[str, int] = response.json()
            return answer


async def drive(server: Server, requests: Sequence[Request], concurrency: int) -> Round:
    """``read_path.drive`` taking any 2xx (the peer answers a create with 201)."""
    return await read_path.drive(server, requests, concurrency, any_success=True)


# ------------------------------------------------------------------------------ data


async def seed_library(database_url: str, customers: int, payments: int) -> None:
    """``read_path.seed`` (the known customer and its payments), then the other customers."""
    await read_path.seed(database_url, payments)
    start = datetime.now(UTC) - timedelta(days=1)
    rows = [
        {
            "id": uuid.uuid4(),
            "external_id": f"customer-{index}",
            "email": f"customer-{index}@example.com",
            "name": f"Customer {index}",
            "metadata": {},
            "created_at": start + timedelta(seconds=index),
            "updated_at": start + timedelta(seconds=index),
        }
        for index in range(1, customers)
    ]
    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.insert(Customer.__table__), rows)
    finally:
        await engine.dispose()


def seed_peer(python: str, database_url: str, customers: int, payments: int, env: dict[str, str]) -> str:
    """Seed the peer with its own interpreter; returns the id of the customer with the payments."""
    command = [
        python,
        str(BENCH_DIR / "peer_apps.py"),
        "seed-peer",
        database_url,
        str(customers),
        str(payments),
    ]
    done = subprocess.run(  # noqa: S603
        command, check=True, capture_output=True, text=True, env={**os.environ, **env}
    )
    return done.stdout.strip().splitlines()[-1]


def peer_missing(python: str) -> str | None:
    """Why ``python`` cannot serve the peer, or None if it can."""
    probe = "import fastapi_payments, greenlet, uvicorn"
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)  # noqa: S603
    except OSError as exc:
        return f"{python}: {exc}"
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    return None


@contextlib.asynccontextmanager
async def databases(label: str, options: argparse.Namespace) -> AsyncIterator[tuple[str, str]]:
    """(library URL, peer URL): two SQLite files, or two scratch PostgreSQL databases."""
    if label == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite+aiosqlite:///{directory}/library.db", f"sqlite+aiosqlite:///{directory}/peer.db"
        return
    async with scratch_postgres(options.postgres) as library, scratch_postgres(options.postgres) as peer:
        yield library, peer


# ------------------------------------------------------------------------------ run


async def per_request(
    server: AppServer, requests: Sequence[Request], probe: str, **params: Any
) -> dict[str, float]:
    """Switch a server-side probe (counting or profile) on, send ``requests`` one by one, read it."""
    await server.control("POST", probe, on=True)
    await drive(server, requests, 1)
    totals = await server.control("POST", probe, on=False, **params)
    return {key: value / len(requests) for key, value in totals.items()}


def rotated(names: Sequence[str], index: int) -> list[str]:
    """``names`` starting at position ``index`` (modulo its length): round ``index``'s order."""
    shift = index % len(names)
    return [*names[shift:], *names[:shift]]


def ratio_line(label: str, endpoint: str, rounds: dict[str, list[Round]], top: str, bottom: str) -> str:
    """The median over rounds of ``top``'s requests/s divided by ``bottom``'s, and each round's."""
    name = f"{top}/{bottom}"
    if top not in rounds or bottom not in rounds:
        return f"{label:10} {endpoint:32} {name:25} -     (no hand-written endpoint)"
    ratios = [
        one.per_second / other.per_second for one, other in zip(rounds[top], rounds[bottom], strict=True)
    ]
    return (
        f"{label:10} {endpoint:32} {name:25} {statistics.median(ratios):.3f} "
        f"(rounds: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
    )


async def measure(
    label: str, endpoint: Endpoint, sides: dict[str, AppServer], options: argparse.Namespace
) -> list[str]:
    """Warm up, count, profile (``--profile``), then the timed rounds of one endpoint; the report lines."""
    makers = endpoint.makers()
    servers = {name: sides[name] for name in SIDES if name in makers and name in sides}

    def batch(name: str, size: int) -> list[Request]:
        return [makers[name](index) for index in range(size)]

    for name, server in servers.items():  # connections, the peer's first-use schema check
        try:
            await drive(server, batch(name, options.concurrency * 2), options.concurrency)
        except (RuntimeError, httpx.HTTPError) as exc:
            return [f"{label:10} {endpoint.name:32} {name:12} not measured: {str(exc)[:400]!r}"]
    counts = {
        name: await per_request(server, batch(name, 10), "/_bench/counting")
        for name, server in servers.items()
    }
    calls: dict[str, float] = {}
    if options.profile:
        slug = endpoint.name.split(" (")[0].replace(" ", "_").replace("'", "")
        for name, server in servers.items():
            path = str(options.profile / f"{label}-{slug}-{name}.pstats")
            profiled = await per_request(
                server, batch(name, options.profile_requests), "/_bench/profile", path=path
            )
            calls[name] = profiled["calls"]
    rounds: dict[str, list[Round]] = {name: [] for name in servers}
    for index in range(options.rounds):
        for name in rotated(list(servers), index):
            rounds[name].append(
                await drive(servers[name], batch(name, options.requests), options.concurrency)
            )
    lines = []
    for name in SIDES:
        if name not in servers:
            if name in sides:
                lines.append(f"{label:10} {endpoint.name:32} {name:12} not measured: no {name} endpoint")
            continue
        done = rounds[name]
        latencies = [value for one in done for value in one.latencies]
        rps = statistics.median(one.per_second for one in done)
        cpu_ms = 1000 * sum(one.cpu_seconds for one in done) / sum(one.requests for one in done)
        p50, p99 = (1000 * percentile(latencies, share) for share in (0.5, 0.99))
        count = counts[name]
        profile = f"  calls/req {calls[name]:,.0f}" if name in calls else ""
        lines.append(
            f"{label:10} {endpoint.name:32} {name:12} {rps:7.0f} req/s  p50 {p50:7.2f} ms"
            f"  p99 {p99:8.2f} ms  cpu {cpu_ms:5.2f} ms/req  stmts/req {count['statements']:.1f}"
            f"  begins/req {count['begins']:.1f}  commits/req {count['commits']:.1f}{profile}"
        )
    lines += [ratio_line(label, endpoint.name, rounds, top, bottom) for top, bottom in RATIOS]
    return lines


async def run_database(label: str, options: argparse.Namespace) -> list[str]:
    lines: list[str] = []
    async with databases(label, options) as (library_url, peer_url):
        await seed_library(library_url, options.customers, options.payments)
        peer_env = {
            PEER_AS_SHIPPED_ENV: "1" if options.peer_as_shipped else "0",
            PEER_AWARE_ENV: "1" if label == "postgresql" and not options.peer_as_shipped else "0",
        }
        owner = seed_peer(options.peer_python, peer_url, options.customers, options.payments, peer_env)
        library = AppServer(sys.executable, "library_app", library_url, f"{LIBRARY_PREFIX}/health", {})
        peer = AppServer(options.peer_python, "peer_app", peer_url, "/health", peer_env)
        # On the library's database: its /me inserts subjects the library has not seen either.
        hand_written = AppServer(sys.executable, "hand_written_app", library_url, "/health", {})
        sides = {"peer": peer, "library": library, "hand-written": hand_written}
        try:
            await asyncio.gather(*(server.ready() for server in sides.values()))
            for endpoint in endpoints(options.limit, owner):
                done = await measure(label, endpoint, sides, options)
                print("\n".join(done), flush=True)
                lines += done
        finally:
            for server in sides.values():
                server.stop()
    return lines


async def main_async(options: argparse.Namespace) -> int:
    missing = peer_missing(options.peer_python)
    if missing is not None:
        print(
            f"peer comparison skipped: {options.peer_python} cannot import fastapi_payments, greenlet "
            f"and uvicorn ({missing}). Install the peer in a virtual environment of its own and pass "
            f"its interpreter with --peer-python or ${PEER_PYTHON_ENV} (bench/README.md)."
        )
        return 0
    print(
        f"peer comparison: {options.requests} requests per round, {options.rounds} rounds, "
        f"concurrency {options.concurrency}, {options.customers} customers and {options.payments} "
        f"payments seeded on each side, page size {options.limit}, peer "
        + (
            "as shipped (one PaymentService for all requests)"
            if options.peer_as_shipped
            else "with one PaymentService per request"
        )
    )
    print(f"load at start: {os.getloadavg()}", flush=True)
    lines = await run_database("sqlite", options)
    if options.postgres:
        lines += await run_database("postgresql", options)
    print(f"load at end: {os.getloadavg()}")
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per app per round (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument(
        "--customers", type=int, default=60, help="customers seeded on each side (default 60)"
    )
    parser.add_argument(
        "--payments", type=int, default=60, help="payments of the first customer on each side (default 60)"
    )
    parser.add_argument("--limit", type=int, default=50, help="page size of every list (default 50)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(read_path.POSTGRES_ENV),
        help=f"server URL (default ${read_path.POSTGRES_ENV})",
    )
    parser.add_argument(
        "--peer-python",
        default=os.environ.get(PEER_PYTHON_ENV, sys.executable),
        help=f"an interpreter that imports fastapi_payments (default ${PEER_PYTHON_ENV}, else this one)",
    )
    parser.add_argument(
        "--peer-as-shipped",
        action="store_true",
        help="serve the peer without the per-request PaymentService (fails with --concurrency above 1)",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="cProfile each server; write DIR/<db>-<endpoint>-<app>.pstats"
    )
    parser.add_argument(
        "--profile-requests", type=int, default=50, help="sequential requests per profile (default 50)"
    )
    options = parser.parse_args(argv)
    if options.profile:
        options.profile = Path(options.profile).resolve()
        options.profile.mkdir(parents=True, exist_ok=True)
    return asyncio.run(main_async(options))


if __name__ == "__main__":
    raise SystemExit(main())
