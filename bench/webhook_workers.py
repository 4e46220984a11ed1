"""Webhook ingest with 1, 2 and 4 uvicorn worker processes sharing one PostgreSQL database.

For each worker count the script creates a scratch PostgreSQL database, seeds a customer, a plan
and ``--subscriptions`` active subscriptions, and starts two real servers on 127.0.0.1 with that
many workers each (``ingest_apps.py``):

* the library: ``PaymentsRouter`` with the fake provider; each event is a signed
  ``payment.succeeded`` renewal of one of the subscriptions, whose apply creates the local
  payment and writes its audit trail (two ``status_changes``);
* the floor: ``POST /ingest``, one INSERT of the raw body and a commit per delivery.

The deliveries are the ``--events`` distinct events plus ``--duplicates`` of them again, shuffled,
so new events and re-deliveries (some while the first delivery is still being applied) arrive
together, from ``--concurrency`` senders on new connections (no keep-alive, so any worker may
accept any delivery). They are timed in ``--rounds`` slices that alternate between the floor and
the library. The headline per worker count is library deliveries/s divided by floor
deliveries/s, with deliveries per server CPU-second (all worker processes, from ``/proc``) and
the scaling against one worker.

After each run the database is counted: every event stored exactly once and processed at its
first attempt, one payment per event, two payment status changes per event, one ``processed``
answer per event and ``duplicate`` for every other delivery of it, and every floor delivery
stored. A count that is off fails the run.

This is a benchmark, not a test: it asserts nothing about speed. Run ``--help`` for options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from fastapi_cashier.db import create_engine, create_session_factory, create_tables
from fastapi_cashier.db import models as m
from fastapi_cashier.providers.base import EventType
from fastapi_cashier.providers.fake.wire import encode_event, sign_headers
from fastapi_cashier.settings import DatabaseSettings
from fastapi_cashier.statuses import BillingInterval, PricingModel, SubscriptionStatus

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from ingest_apps import DATABASE_ENV, PID_HEADER, SECRET_ENV, floor_metadata  # noqa: E402

POSTGRES_ENV = "CASHIER_BENCH_POSTGRES_URL"
WEBHOOK_SECRET = "whsec_bench_workers"  # noqa: S105 - a throwaway secret of the fake provider
LIBRARY_PATH = "/billing/webhooks/fake"
FLOOR_PATH = "/ingest"
READY_TIMEOUT = 120


class BenchError(RuntimeError):
    """The run could not be made, or the database counts show a lost or doubled event."""


# ------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers and their helpers)."""
    found = [pid]
    for current in found:
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            found.extend(int(child) for child in children)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants, from ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for process in descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


class Server:
    """``uvicorn --workers N`` of one of ``ingest_apps.py``'s factories, on a free port."""

    def __init__(self, factory: str, database_url: str, workers: int, health: str, log: Path) -> None:
        self.factory, self.workers, self.health, self.log = factory, workers, health, log
        self.env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("PAYMENTS_")},
            DATABASE_ENV: database_url,
            SECRET_ENV: WEBHOOK_SECRET,
        }
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(BENCH_DIR),
            f"ingest_apps:{self.factory}",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220, S603 - our own uvicorn, returns at once
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        pids: set[str] = set()
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5, limits=limits) as client:
            deadline = time.monotonic() + READY_TIMEOUT
            while len(pids) < self.workers:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(
                        f"{self.factory} did not start with {self.workers} workers; see {self.log}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(self.health)
                    if response.status_code == 200 and PID_HEADER in response.headers:
                        pids.add(response.headers[PID_HEADER])
                await asyncio.sleep(0.05)

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid) if self.process is not None else 0.0

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 9)
        self.process.wait()


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class Event:
    event_id: str
    payment_id: str
    body: bytes


def renewal_event(tag: str, number: int, subscription: str) -> Event:
    """A signed-on-delivery ``payment.succeeded`` renewal of ``subscription``."""
    suffix = f"{tag}_{number:06d}_{secrets.token_hex(3)}"
    now = int(time.time())
    obj = {
        "object": "payment",
        "id": f"pay_bench_{suffix}",
        "status": "succeeded",
        "amount": 900,
        "currency": "EUR",
        "refunded_amount": 0,
        "description": "Renewal",
        "checkout_session": None,
        "invoice": None,
        "subscription": subscription,
        "customer": f"cus_{subscription}",
        "payment_method_summary": "visa 4242",
        "failure_code": None,
        "failure_message": None,
        "metadata": {},
        "created": now,
        "updated": now,
    }
    event_id = f"evt_bench_{suffix}"
    return Event(event_id, obj["id"], encode_event(event_id, EventType.PAYMENT_SUCCEEDED, now, obj))


async def seed(database_url: str, subscriptions: int) -> list[str]:
    """A customer, a monthly plan and ``subscriptions`` active subscriptions; their provider ids."""
    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        await create_tables(engine)
        async with engine.begin() as connection:
            await connection.run_sync(floor_metadata.create_all)
        async with create_session_factory(engine)() as session:
            customer = m.Customer(external_id="bench-customer", email="bench@example.com")
            product = m.Product(name="Bench")
            session.add_all([customer, product])
            await session.flush()
            plan = m.Plan(
                product_id=product.id,
                name="Basic",
                pricing_model=PricingModel.FLAT,
                unit_amount=900,
                currency="EUR",
                interval=BillingInterval.MONTH,
            )
            session.add(plan)
            await session.flush()
            start = datetime.now(UTC) - timedelta(days=1)
            ids = [f"sub_bench_{number:05d}" for number in range(subscriptions)]
            session.add_all(
                m.Subscription(
                    customer_id=customer.id,
                    plan_id=plan.id,
                    provider="fake",
                    provider_subscription_id=provider_id,
                    status=SubscriptionStatus.ACTIVE,
                    quantity=1,
                    current_period_start=start,
                    current_period_end=start + timedelta(days=30),
                )
                for provider_id in ids
            )
            await session.commit()
        return ids
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------ driving


@dataclass
class Pass:
    deliveries: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    answers: list[tuple[str, str, str]] = field(default_factory=list)  # event id, status, pid

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds if self.seconds else float("inf")

    @property
    def per_cpu_second(self) -> float:
        return self.deliveries / self.cpu_seconds if self.cpu_seconds else float("inf")


async def drive(server: Server, path: str, events: Sequence[Event], concurrency: int, into: Pass) -> None:
    """POST ``events`` (signed now) with ``concurrency`` senders; refuse any non-200."""
    queue = iter(events)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)

    async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as client:

        async def sender() -> None:
            for event in queue:
                headers = sign_headers(WEBHOOK_SECRET, event.body, int(time.time()))
                sent = time.perf_counter()
                response = await client.post(path, content=event.body, headers=headers)
                into.latencies_ms.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 200:
                    raise BenchError(f"POST {path} answered {response.status_code}: {response.text[:500]}")
                status = str(response.json().get("status"))
                into.answers.append((event.event_id, status, response.headers.get(PID_HEADER, "?")))

        cpu_before = server.cpu()
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(sender())
        into.seconds += time.perf_counter() - started
        into.cpu_seconds += server.cpu() - cpu_before
        into.deliveries += len(events)


# ------------------------------------------------------------------------------ checking


async def check(
    database_url: str, events: Sequence[Event], library: Pass, floor: Pass, floor_expected: int
) -> None:
    """Every event stored once, processed at its first attempt and applied once; the answers agree."""
    ids = {event.event_id for event in events}
    payment_ids = {event.payment_id for event in events}
    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        async with engine.connect() as connection:
            stored = (
                await connection.execute(
                    sa.select(m.WebhookEvent.event_id, m.WebhookEvent.status, m.WebhookEvent.attempts).where(
                        m.WebhookEvent.event_id.like("evt_bench_timed_%")
                    )
                )
            ).all()
            payments = (
                await connection.execute(
                    sa.select(m.Payment.provider_payment_id, m.Payment.status).where(
                        m.Payment.provider_payment_id.like("pay_bench_timed_%")
                    )
                )
            ).all()
            changes = (
                await connection.execute(
                    sa.select(m.StatusChange.provider_event_id, sa.func.count())
                    .where(
                        m.StatusChange.entity_type == "payment",
                        m.StatusChange.provider_event_id.like("evt_bench_timed_%"),
                    )
                    .group_by(m.StatusChange.provider_event_id)
                )
            ).all()
            floor_rows = await connection.scalar(
                sa.select(sa.func.count()).select_from(floor_metadata.tables["bench_raw_events"])
            )
    finally:
        await engine.dispose()
    problems: list[str] = []
    stored_ids = Counter(row.event_id for row in stored)
    if set(stored_ids) != ids or any(count != 1 for count in stored_ids.values()):
        problems.append(
            f"stored events: {len(stored)} rows for {len(ids)} events, {len(set(stored_ids))} distinct"
        )
    not_once = [row for row in stored if (row.status.value, row.attempts) != ("processed", 1)]
    if not_once:
        problems.append(f"{len(not_once)} events not processed at their first attempt, e.g. {not_once[:3]}")
    if {row.provider_payment_id for row in payments} != payment_ids or len(payments) != len(payment_ids):
        problems.append(f"payments: {len(payments)} rows for {len(payment_ids)} events")
    if any(row.status.value != "succeeded" for row in payments):
        problems.append("a payment is not succeeded")
    audit = dict(changes)
    if set(audit) != ids or any(count != 2 for count in audit.values()):
        problems.append(
            f"payment status changes: {sum(audit.values())} for {len(ids)} events (2 each expected)"
        )
    processed = Counter(event_id for event_id, status, _ in library.answers if status == "processed")
    others = Counter(status for _, status, _ in library.answers if status != "processed")
    if set(processed) != ids or any(count != 1 for count in processed.values()):
        problems.append(f"'processed' answers: {sum(processed.values())} for {len(ids)} events")
    if set(others) - {"duplicate"}:
        problems.append(f"unexpected answers: {dict(others)}")
    if floor_rows != floor_expected:
        problems.append(f"floor rows: {floor_rows}, {floor_expected} deliveries")
    if problems:
        raise BenchError("counts are off:\n  " + "\n  ".join(problems))


# ------------------------------------------------------------------------------ one worker count


@dataclass
class WorkerResult:
    workers: int
    events: int
    deliveries: int
    library: Pass
    floor: Pass
    load_before: str
    load_after: str

    @property
    def ratio(self) -> float:
        return self.library.per_second / self.floor.per_second

    def summary(self) -> dict[str, Any]:
        def one(p: Pass) -> dict[str, Any]:
            ordered = sorted(p.latencies_ms)
            return {
                "deliveries": p.deliveries,
                "seconds": round(p.seconds, 3),
                "deliveries_per_second": round(p.per_second, 1),
                "server_cpu_seconds": round(p.cpu_seconds, 2),
                "deliveries_per_cpu_second": round(p.per_cpu_second, 1),
                "latency_ms_p50": round(statistics.median(ordered), 1),
                "latency_ms_p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
                "by_process": sorted(Counter(pid for _, _, pid in p.answers).values()),
            }

        return {
            "workers": self.workers,
            "events": self.events,
            "deliveries": self.deliveries,
            "library": one(self.library),
            "floor": one(self.floor),
            "ratio_library_to_floor": round(self.ratio, 4),
            "load_before": self.load_before,
            "load_after": self.load_after,
        }


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def run_workers(admin_url: str, workers: int, options: argparse.Namespace, log: Path) -> WorkerResult:
    rng = random.Random(workers)
    async with scratch_postgres(admin_url) as url:
        subscriptions = await seed(url, options.subscriptions)
        events = [
            renewal_event("timed", number, subscriptions[number % len(subscriptions)])
            for number in range(options.events)
        ]
        deliveries = events + rng.sample(events, round(len(events) * options.duplicates))
        rng.shuffle(deliveries)
        warmup = [
            renewal_event("warm", number, subscriptions[number % len(subscriptions)])
            for number in range(max(4 * options.concurrency, options.events // 10))
        ]
        library = Server("library_app", url, workers, "/billing/health", log)
        floor = Server("floor_app", url, workers, "/health", log)
        try:
            await library.start()
            await floor.start()
            await drive(floor, FLOOR_PATH, warmup, options.concurrency, Pass())
            await drive(library, LIBRARY_PATH, warmup, options.concurrency, Pass())
            library_pass, floor_pass = Pass(), Pass()
            load_before = load_average()
            bounds = [len(deliveries) * part // options.rounds for part in range(options.rounds + 1)]
            for number in range(options.rounds):
                chunk = deliveries[bounds[number] : bounds[number + 1]]
                order = [(floor, FLOOR_PATH, floor_pass), (library, LIBRARY_PATH, library_pass)]
                for server, path, into in order if number % 2 == 0 else reversed(order):
                    await drive(server, path, chunk, options.concurrency, into)
            load_after = load_average()
        finally:
            library.stop()
            floor.stop()
        await check(url, events, library_pass, floor_pass, len(warmup) + len(deliveries))
    return WorkerResult(
        workers, len(events), len(deliveries), library_pass, floor_pass, load_before, load_after
    )


@contextlib.asynccontextmanager
async def scratch_postgres(admin_url: str) -> AsyncIterator[str]:
    name = f"cashier_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


# ------------------------------------------------------------------------------ report


def table(results: Sequence[WorkerResult], options: argparse.Namespace) -> str:
    one = results[0] if results and results[0].workers == 1 else None
    lines = [
        f"webhook ingest on PostgreSQL, uvicorn workers: {options.events} events + "
        f"{round(options.events * options.duplicates)} duplicate deliveries, shuffled; "
        f"concurrency {options.concurrency}, {options.rounds} alternating rounds, no keep-alive",
        "",
        "workers  floor dlv/s  library dlv/s  library/floor  floor dlv/CPU-s  library dlv/CPU-s  "
        "library scaling  p50 floor/lib ms  p99 floor/lib ms  load avg (before -> after)",
    ]
    for result in results:
        summary = result.summary()
        lib, flo = summary["library"], summary["floor"]
        scaling = f"{result.library.per_second / one.library.per_second:.2f}x" if one else "-"
        lines.append(
            f"{result.workers:>7}  {flo['deliveries_per_second']:>11.1f}  "
            f"{lib['deliveries_per_second']:>13.1f}  "
            f"{result.ratio:>13.3f}  {flo['deliveries_per_cpu_second']:>15.1f}  "
            f"{lib['deliveries_per_cpu_second']:>17.1f}  {scaling:>15}  "
            f"{flo['latency_ms_p50']:>7.1f} / {lib['latency_ms_p50']:<7.1f}  "
            f"{flo['latency_ms_p99']:>7.1f} / {lib['latency_ms_p99']:<7.1f}  "
            f"{result.load_before} -> {result.load_after}"
        )
    lines.append("")
    for result in results:
        summary = result.summary()
        lines.append(
            f"{result.workers} workers: deliveries per library process {summary['library']['by_process']}; "
            f"checked: {result.events} events stored once, processed at attempt 1, one payment and two "
            f"status changes each, one 'processed' answer each, {result.deliveries - result.events} "
            "'duplicate' answers"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--postgres", metavar="URL", default=os.environ.get(POSTGRES_ENV), help=f"(default: ${POSTGRES_ENV})"
    )
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated (default 1,2,4)")
    parser.add_argument("--events", type=int, default=1000, help="distinct events per run (default 1000)")
    parser.add_argument("--duplicates", type=float, default=0.3, help="share delivered twice (default 0.3)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders (default 16)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating timed slices (default 4)")
    parser.add_argument("--subscriptions", type=int, default=100, help="subscriptions renewed (default 100)")
    parser.add_argument(
        "--log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "cashier-bench-workers.log",
        help="server log",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    options = parser.parse_args(argv)
    if not options.postgres or make_url(options.postgres).drivername != "postgresql+asyncpg":
        parser.error(f"give a postgresql+asyncpg:// URL with --postgres or ${POSTGRES_ENV}")
    counts = [int(part) for part in options.workers.split(",")]

    async def run_all() -> list[WorkerResult]:
        return [await run_workers(options.postgres, count, options, options.log) for count in counts]

    try:
        results = asyncio.run(run_all())
    except BenchError as exc:
        sys.stderr.write(f"benchmark failed: {exc}\n")
        return 1
    if options.json:
        sys.stdout.write(json.dumps([result.summary() for result in results], indent=2) + "\n")
    else:
        sys.stdout.write(table(results, options) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
