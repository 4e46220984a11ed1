"""Webhook ingest throughput of fastapi-cashier, as a ratio to a bare FastAPI insert endpoint.

For each database (a SQLite file in a temporary directory always; PostgreSQL when a URL is
given, in a scratch database this script creates and drops) one run measures, in one process:

* the floor: a bare FastAPI app whose ``POST /ingest`` reads the raw body, INSERTs it into a
  one-table schema and commits, on an engine built with the library's own engine settings;
* the library: ``PaymentsRouter`` mounted at ``/billing`` with the fake provider, receiving
  signed deliveries at ``POST /billing/webhooks/fake`` (verify, store once, apply, commit);
* the library again with every delivery repeated (the duplicate path).

Both apps are driven the same way: ``httpx.AsyncClient`` over ``httpx.ASGITransport`` with a
fixed number of concurrent senders, after a warm-up round that is not timed. The events are
timed in a few slices (rounds) that alternate between the apps, so a change in the machine's
load during the run weighs on both. The headline is the ratio library events/s divided by
baseline events/s on the same database in the same run.

This is a benchmark, not a test: it asserts nothing about speed. Run ``--help`` for options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import itertools
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI, Request
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fastapi_cashier import PaymentsRouter, PaymentsSettings
from fastapi_cashier.db.engine import create_engine
from fastapi_cashier.providers.base import EventType
from fastapi_cashier.providers.fake import CheckoutOutcome, FakeProvider
from fastapi_cashier.providers.fake.wire import encode_event
from fastapi_cashier.settings import DatabaseSettings

WEBHOOK_SECRET = "whsec_bench_fake"  # noqa: S105 - a throwaway secret of an in-process fake
JWT_SECRET = "bench-jwt-secret-long-enough-for-hs256-tokens"  # noqa: S105 - never used to sign
BASE_URL = "http://bench.invalid"
POSTGRES_ENV = "CASHIER_BENCH_POSTGRES_URL"
SCRATCH_PREFIX = "cashier_bench_"
UNKNOWN_EVENT_TYPES = (EventType.PAYMENT_SUCCEEDED, EventType.PAYMENT_FAILED, EventType.CHECKOUT_COMPLETED)
#: Outcomes of the paid checkouts, in turn: a success emits two events, a decline one.
CHECKOUT_OUTCOMES: tuple[CheckoutOutcome, ...] = ("succeeded", "succeeded", "declined")
CHECKOUTS_PER_CUSTOMER = 4

Delivery = tuple[Mapping[str, str], bytes]


class BenchError(RuntimeError):
    """The benchmark could not run as asked (a refused delivery, a database it cannot reach)."""


# ------------------------------------------------------------------------------ results


@dataclass
class PassResult:
    """One timed pass: ``events`` deliveries by ``concurrency`` senders."""

    events: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    outcomes: dict[str, int]

    @classmethod
    def combined(cls, parts: Sequence[PassResult]) -> PassResult:
        """One result for the rounds of a pass: events, time and outcomes added up."""
        outcomes: Counter[str] = Counter()
        for part in parts:
            outcomes.update(part.outcomes)
        return cls(
            events=sum(part.events for part in parts),
            seconds=sum(part.seconds for part in parts),
            latencies_ms=[latency for part in parts for latency in part.latencies_ms],
            outcomes=dict(outcomes),
        )

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "events": self.events,
            "seconds": round(self.seconds, 4),
            "events_per_second": round(self.events_per_second, 1),
            "latency_ms_p50": round(statistics.median(ordered), 2),
            "latency_ms_p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
            "outcomes": dict(sorted(self.outcomes.items())),
        }


@dataclass
class DatabaseResult:
    """Every pass on one database, and the ratios that are the headline."""

    database: str
    baseline: PassResult
    library_new: PassResult
    library_duplicates: PassResult
    applied_events: int
    prepare_seconds: float

    @property
    def ratio_new(self) -> float:
        return self.library_new.events_per_second / self.baseline.events_per_second

    @property
    def ratio_duplicates(self) -> float:
        return self.library_duplicates.events_per_second / self.baseline.events_per_second

    def summary(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "events_about_existing_objects": self.applied_events,
            "prepare_seconds": round(self.prepare_seconds, 2),
            "baseline": self.baseline.summary(),
            "library_new": self.library_new.summary(),
            "library_duplicates": self.library_duplicates.summary(),
            "ratio_library_new_to_baseline": round(self.ratio_new, 4),
            "ratio_library_duplicates_to_baseline": round(self.ratio_duplicates, 4),
        }


@dataclass(frozen=True)
class BenchOptions:
    """What the command line asked for."""

    events: int
    concurrency: int
    warmup: int
    rounds: int
    existing_share: float
    profile_dir: Path | None


# ------------------------------------------------------------------------------ driving


async def drive(
    client: httpx.AsyncClient, path: str, deliveries: Sequence[Delivery], concurrency: int
) -> PassResult:
    """POST every delivery with ``concurrency`` senders sharing one queue; refuse any non-200."""
    queue: Iterator[Delivery] = iter(deliveries)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def sender() -> None:
        # One shared iterator: next() never awaits, so senders cannot take the same delivery.
        for headers, body in queue:
            sent = time.perf_counter()
            response = await client.post(path, content=body, headers=dict(headers))
            latencies.append((time.perf_counter() - sent) * 1000)
            if response.status_code != 200:
                raise BenchError(f"POST {path} answered {response.status_code}: {response.text[:500]}")
            outcomes[str(response.json().get("status", "stored"))] += 1

    started = time.perf_counter()
    async with asyncio.TaskGroup() as senders:
        for _ in range(concurrency):
            senders.create_task(sender())
    return PassResult(len(deliveries), time.perf_counter() - started, latencies, dict(outcomes))


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``app`` in process, with the app's lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


class Profiles:
    """cProfile stats per pass, summed over its rounds, when a directory was given."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._profiles: dict[str, cProfile.Profile] = {}

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        profiler = self._profiles.setdefault(name, cProfile.Profile())
        profiler.enable()
        try:
            yield
        finally:
            profiler.disable()

    def dump(self) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, profiler in self._profiles.items():
            profiler.dump_stats(self.directory / f"{name}.pstats")


# ------------------------------------------------------------------------------ the baseline


def baseline_app(engine: AsyncEngine) -> tuple[FastAPI, sa.MetaData]:
    """A bare FastAPI app whose only endpoint stores the raw body in one table."""
    metadata = sa.MetaData()
    raw_events = sa.Table(
        "bench_raw_events",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    app = FastAPI()

    @app.post("/ingest")
    async def ingest(request: Request) -> dict[str, Any]:
        body = await request.body()
        async with engine.begin() as connection:
            await connection.execute(raw_events.insert().values(received_at=datetime.now(UTC), body=body))
        return {"received": True, "status": "stored"}

    return app, metadata


# ------------------------------------------------------------------------------ the library


class BenchSettings(PaymentsSettings):
    """``PaymentsSettings`` from keyword arguments only: ``PAYMENTS_*`` and ``.env`` are not read."""

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


def library_settings(database_url: str) -> PaymentsSettings:
    """The fake provider without auto-delivery, so the events of prepared checkouts are only kept."""
    return BenchSettings(
        environment="test",
        database={"url": database_url, "create_tables": True},
        auth={"jwt_secret": JWT_SECRET},
        fake={"webhook_secret": WEBHOOK_SECRET, "auto_deliver": False},
        default_provider="fake",
    )


def fake_provider(payments: PaymentsRouter) -> FakeProvider:
    provider = payments.providers["fake"]
    if not isinstance(provider, FakeProvider):
        raise BenchError("the router's 'fake' provider is not the built-in FakeProvider")
    return provider


async def paid_checkout_events(payments: PaymentsRouter, count: int) -> list[bytes]:
    """Bodies of ``count`` events about objects that exist: checkouts created and then paid or declined.

    Each checkout is created through the service layer (as a host would) and submitted on the
    fake's hosted page; with auto-delivery off, the fake only records the events it emits.
    """
    fake = fake_provider(payments)
    first = len(fake.sent_events)
    outcomes = itertools.cycle(CHECKOUT_OUTCOMES)
    number = 0
    while len(fake.sent_events) - first < count:
        async with payments.service(base_url=f"{BASE_URL}/billing") as svc:
            customer = await svc.customers.get_or_create(
                f"bench-customer-{number // CHECKOUTS_PER_CUSTOMER}",
                email=f"customer{number // CHECKOUTS_PER_CUSTOMER}@bench.invalid",
            )
            session = await svc.checkout.create(
                customer,
                amount=1000 + number % 9000,
                currency="EUR",
                description="Concert ticket",
                reference=f"order-{number}",
                success_url="https://shop.invalid/ok",
                cancel_url="https://shop.invalid/cancel",
            )
        if session.provider_session_id is None:
            raise BenchError("a checkout session was created without a provider session id")
        await fake.submit_checkout(session.provider_session_id, next(outcomes))
        number += 1
    return [body for _headers, body in fake.sent_events[first : first + count]]


def unknown_object_events(count: int, *, tag: str) -> list[bytes]:
    """Bodies of realistic events about payments and checkouts this app has never seen.

    The inbox verifies, stores and applies them in full; the applier records them as
    ``ignored`` because no local row matches.
    """
    now = int(time.time())
    bodies: list[bytes] = []
    for number, event_type in zip(range(count), itertools.cycle(UNKNOWN_EVENT_TYPES), strict=False):
        suffix = f"{tag}{number:06d}{secrets.token_hex(4)}"
        session_id, payment_id, customer_id = f"cs_{suffix}", f"pay_{suffix}", f"cus_{suffix}"
        metadata = {"checkout_session_id": str(uuid.uuid4()), "customer_id": str(uuid.uuid4())}
        amount = 1000 + number % 9000
        obj: dict[str, Any]
        if event_type is EventType.CHECKOUT_COMPLETED:
            obj = {
                "object": "checkout_session",
                "id": session_id,
                "mode": "payment",
                "status": "complete",
                "amount": amount,
                "currency": "EUR",
                "description": "Concert ticket",
                "customer": customer_id,
                "payment": payment_id,
                "subscription": None,
                "success_url": "https://shop.invalid/ok",
                "cancel_url": "https://shop.invalid/cancel",
                "expires_at": now + 86_400,
                "metadata": metadata,
                "created": now,
                "updated": now,
            }
        else:
            failed = event_type is EventType.PAYMENT_FAILED
            obj = {
                "object": "payment",
                "id": payment_id,
                "status": "failed" if failed else "succeeded",
                "amount": amount,
                "currency": "EUR",
                "refunded_amount": 0,
                "description": "Concert ticket",
                "checkout_session": session_id,
                "invoice": None,
                "subscription": None,
                "customer": customer_id,
                "payment_method_summary": "visa •••• 0002" if failed else "visa •••• 4242",
                "failure_code": "card_declined" if failed else None,
                "failure_message": "Your card was declined." if failed else None,
                "metadata": metadata,
                "created": now,
                "updated": now,
            }
        bodies.append(encode_event(f"evt_{suffix}", event_type, now, obj))
    return bodies


def signed(fake: FakeProvider, bodies: Sequence[bytes]) -> list[Delivery]:
    """Deliveries of ``bodies`` signed now, so no signature ages past the tolerance during a pass."""
    return [(fake.sign(body), body) for body in bodies]


def interleaved(existing: Sequence[bytes], unknown: Sequence[bytes]) -> list[bytes]:
    """Both lists in their own order, merged so that every stretch has about the same mix."""
    merged: list[bytes] = []
    taken_existing = taken_unknown = 0
    while taken_existing < len(existing) or taken_unknown < len(unknown):
        behind = taken_existing * len(unknown) <= taken_unknown * len(existing)
        if taken_existing < len(existing) and (behind or taken_unknown == len(unknown)):
            merged.append(existing[taken_existing])
            taken_existing += 1
        else:
            merged.append(unknown[taken_unknown])
            taken_unknown += 1
    return merged


def split(items: Sequence[bytes], parts: int) -> list[Sequence[bytes]]:
    """``items`` cut into ``parts`` consecutive slices of nearly equal length."""
    bounds = [len(items) * part // parts for part in range(parts + 1)]
    return [items[low:high] for low, high in itertools.pairwise(bounds)]


@dataclass
class Apps:
    """The library and the floor, up and reachable in process."""

    payments: PaymentsRouter
    library: httpx.AsyncClient
    library_path: str
    baseline: httpx.AsyncClient
    baseline_engine: AsyncEngine


@contextlib.asynccontextmanager
async def both_apps(database_url: str, settings: PaymentsSettings | None = None) -> AsyncIterator[Apps]:
    """The library (``library_settings`` unless ``settings`` is given) and the floor on
    ``database_url``, each with its lifespan running; on SQLite each has a file of its own."""
    library_url, baseline_url = database_url, database_url
    if database_url.startswith("sqlite"):
        # Separate files, so neither app's writes or file growth weigh on the other.
        library_url, baseline_url = f"{database_url}-library.db", f"{database_url}-baseline.db"
    payments = PaymentsRouter(settings or library_settings(library_url))
    library = FastAPI()
    library.include_router(payments, prefix="/billing")
    baseline_engine = create_engine(DatabaseSettings(url=baseline_url))
    baseline, baseline_metadata = baseline_app(baseline_engine)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(baseline_engine.dispose)
        async with baseline_engine.begin() as connection:
            await connection.run_sync(baseline_metadata.create_all)
        yield Apps(
            payments=payments,
            library=await stack.enter_async_context(asgi_client(library)),
            library_path=library.url_path_for("payments:webhook", provider="fake"),
            baseline=await stack.enter_async_context(asgi_client(baseline)),
            baseline_engine=baseline_engine,
        )


async def run_database(label: str, database_url: str, options: BenchOptions) -> DatabaseResult:
    """Prepare the events with the library, then time baseline and library in alternating rounds.

    Both apps are up for the whole run. Each round times a slice of the events on the baseline,
    on the library, and on the library again (duplicates), so a change in the machine's load
    during the run weighs on both sides of the ratio alike.
    """
    profiles = Profiles(options.profile_dir)
    existing = round(options.events * options.existing_share)

    async with both_apps(database_url) as apps:
        payments = apps.payments
        baseline_client, library_client, library_path = apps.baseline, apps.library, apps.library_path
        fake = fake_provider(payments)

        prepare_started = time.perf_counter()
        bodies = interleaved(
            await paid_checkout_events(payments, existing),
            unknown_object_events(options.events - existing, tag="new"),
        )
        warmup = unknown_object_events(options.warmup, tag="warm")
        prepare_seconds = time.perf_counter() - prepare_started

        passes: dict[str, tuple[httpx.AsyncClient, str]] = {
            "baseline": (baseline_client, "/ingest"),
            "library-new": (library_client, library_path),
            "library-duplicates": (library_client, library_path),
        }
        for client, path in passes.values():
            await drive(client, path, signed(fake, warmup), options.concurrency)

        parts: dict[str, list[PassResult]] = {name: [] for name in passes}
        for number, chunk in enumerate(split(bodies, options.rounds)):
            # Duplicates must follow their new events; the baseline goes first or last in turn.
            order = ["baseline", "library-new", "library-duplicates"]
            if number % 2:
                order.append(order.pop(0))
            for name in order:
                client, path = passes[name]
                deliveries = signed(fake, chunk)
                with profiles.section(f"{label}-{name}"):
                    parts[name].append(await drive(client, path, deliveries, options.concurrency))
    profiles.dump()
    return DatabaseResult(
        label,
        PassResult.combined(parts["baseline"]),
        PassResult.combined(parts["library-new"]),
        PassResult.combined(parts["library-duplicates"]),
        existing,
        prepare_seconds,
    )


# ------------------------------------------------------------------------------ databases


@contextlib.asynccontextmanager
async def scratch_postgres(admin_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database next to ``admin_url``'s, dropped afterwards; yields its URL."""
    url = make_url(admin_url)
    name = f"{SCRATCH_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        try:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except (OSError, sa.exc.DBAPIError) as exc:
            raise BenchError(f"cannot create the scratch database {name} on PostgreSQL: {exc}") from exc
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


async def run(options: BenchOptions, postgres_url: str | None) -> list[DatabaseResult]:
    results: list[DatabaseResult] = []
    async with contextlib.AsyncExitStack() as stack:
        # The scratch database is created first, so a server that cannot be reached fails the
        # run at once rather than after the SQLite passes.
        scratch_url = (
            await stack.enter_async_context(scratch_postgres(postgres_url)) if postgres_url else None
        )
        with tempfile.TemporaryDirectory(prefix="cashier-bench-") as directory:
            sqlite_url = f"sqlite+aiosqlite:///{Path(directory) / 'bench'}"
            results.append(await run_database("sqlite", sqlite_url, options))
        if scratch_url is not None:
            results.append(await run_database("postgresql", scratch_url, options))
    return results


# ------------------------------------------------------------------------------ the report


def table(results: Sequence[DatabaseResult], options: BenchOptions) -> str:
    """The human-readable report: events/s per pass and the ratios to the baseline."""
    header = (
        "database",
        "baseline ev/s",
        "library new ev/s",
        "library dup ev/s",
        "new/baseline",
        "dup/baseline",
    )
    rows = [
        (
            result.database,
            f"{result.baseline.events_per_second:,.0f}",
            f"{result.library_new.events_per_second:,.0f}",
            f"{result.library_duplicates.events_per_second:,.0f}",
            f"{result.ratio_new:.3f}",
            f"{result.ratio_duplicates:.3f}",
        )
        for result in results
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join(
            [first, *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))]
        )

    lines = [
        f"webhook ingest: {options.events} events per pass, concurrency {options.concurrency}, "
        f"warm-up {options.warmup} (not timed), {options.rounds} alternating rounds, "
        f"{round(options.existing_share * 100)}% about existing objects",
        "",
        line(header),
        line(["-" * width for width in widths]),
        *(line(row) for row in rows),
        "",
    ]
    for result in results:
        lines.append(
            f"{result.database:<10} prepared {result.applied_events} events about existing objects "
            f"in {result.prepare_seconds:.1f} s (not timed)"
        )
        for name, single in (
            ("baseline", result.baseline),
            ("library new", result.library_new),
            ("library dup", result.library_duplicates),
        ):
            stats = single.summary()
            outcomes = ", ".join(f"{key} {value}" for key, value in stats["outcomes"].items())
            lines.append(
                f"{result.database:<10} {name:<12} p50 {stats['latency_ms_p50']:>7.2f} ms  "
                f"p95 {stats['latency_ms_p95']:>7.2f} ms  {outcomes}"
            )
    return "\n".join(lines)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def parse_args(argv: Sequence[str] | None) -> tuple[BenchOptions, str | None, bool]:
    parser = argparse.ArgumentParser(
        description=(
            "Webhook ingest events/s of fastapi-cashier against a bare FastAPI endpoint that only "
            "inserts the raw body, on SQLite (always) and PostgreSQL (when a URL is given), "
            "reported as library/baseline ratios from one run. A benchmark: it asserts nothing."
        )
    )
    parser.add_argument("--events", type=positive, default=2000, help="events per timed pass (default 2000)")
    parser.add_argument("--concurrency", type=positive, default=8, help="concurrent senders (default 8)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed deliveries before each pass (default: events/10, at least 4 x concurrency)",
    )
    parser.add_argument(
        "--rounds",
        type=positive,
        default=5,
        help=(
            "slices the events are timed in, alternating baseline and library, so that load changes "
            "during the run weigh on both alike (default 5)"
        ),
    )
    parser.add_argument(
        "--existing-share",
        type=share,
        default=0.5,
        help=(
            "share of the events about checkouts and payments that exist and get applied; the rest "
            "are about unknown objects and are recorded as ignored (default 0.5)"
        ),
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get(POSTGRES_ENV),
        help=(
            f"a postgresql+asyncpg:// URL to a server where a scratch database {SCRATCH_PREFIX}* "
            f"may be created and dropped (default: ${POSTGRES_ENV}; unset: SQLite only)"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        type=Path,
        default=None,
        help="write cProfile stats of each pass to DIR/<database>-<pass>.pstats",
    )
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else max(4 * args.concurrency, args.events // 10)
    if warmup < 0:
        parser.error("--warmup cannot be negative")
    if args.rounds > args.events:
        parser.error("--rounds cannot be more than --events")
    if args.postgres:
        try:
            driver = make_url(args.postgres).drivername
        except sa.exc.ArgumentError:
            parser.error("--postgres is not a database URL")
        if driver != "postgresql+asyncpg":
            parser.error(f"--postgres needs a postgresql+asyncpg:// URL, not {driver}://")
    options = BenchOptions(
        events=args.events,
        concurrency=args.concurrency,
        warmup=warmup,
        rounds=args.rounds,
        existing_share=args.existing_share,
        profile_dir=args.profile,
    )
    return options, args.postgres or None, args.json


def main(argv: Sequence[str] | None = None) -> int:
    options, postgres_url, as_json = parse_args(argv)
    try:
        results = asyncio.run(run(options, postgres_url))
    except BenchError as exc:
        sys.stderr.write(f"benchmark failed: {exc}\n")
        return 1
    if as_json:
        report = {
            "options": {**asdict(options), "profile_dir": str(options.profile_dir or "") or None},
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "results": [result.summary() for result in results],
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(table(results, options) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
