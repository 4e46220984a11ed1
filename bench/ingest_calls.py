"""Python function calls and SQL statements per webhook delivery, counted with cProfile.

The library (``PaymentsRouter`` with the fake provider, as in ``webhook_ingest.py``) and the floor
(``POST /ingest``: one INSERT of the raw body and a commit) run in process over
``httpx.ASGITransport``, one delivery at a time, on a SQLite file (and on PostgreSQL with
``--postgres URL``, in a scratch database). Each kind of delivery is sent ``--events`` times under
cProfile after an untimed warm-up:

* ``new/processed``: events about checkouts and payments that exist (``payment.succeeded``,
  ``checkout.completed``, ``payment.failed`` of checkouts paid or declined on the fake's page);
* ``new/ignored``: the same shapes about objects the app has never seen;
* ``duplicate``: every one of those again;
* ``floor``: the same bodies posted to the bare insert endpoint.

Reported per kind: function calls per delivery (client included, as in the benchmark), the
share of them in SQLAlchemy, and the SQL statements per delivery (``before_cursor_execute``).
The counts are deterministic up to a few calls (pool and cache warm-up), unlike events/s on a
shared machine. ``--top N`` prints the functions with the most calls per delivery of each kind,
``--stats DIR`` writes the profiles.

This is a measurement, not a test: it asserts nothing. Run ``--help`` for options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webhook_ingest import (
    asgi_client,
    baseline_app,
    fake_provider,
    library_settings,
    paid_checkout_events,
    scratch_postgres,
    signed,
    unknown_object_events,
)

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db.engine import create_engine
from fastapi_cashier.settings import DatabaseSettings

KINDS = ("new/processed", "new/ignored", "duplicate", "floor")


class Statements:
    """Counts the statements an engine sends (``before_cursor_execute``)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


async def measure(database_url: str, events: int, top: int, stats_dir: Path | None) -> dict[str, Any]:
    library_url, baseline_url = database_url, database_url
    if database_url.startswith("sqlite"):
        library_url, baseline_url = f"{database_url}-library.db", f"{database_url}-baseline.db"
    # As in webhook_ingest.py, without the background retry loop, whose statements would be
    # counted with the deliveries they happen to run next to.
    settings = library_settings(library_url)
    settings = settings.model_copy(
        update={"webhooks": settings.webhooks.model_copy(update={"retry_loop": False})}
    )
    payments = PaymentsRouter(settings)
    library = FastAPI()
    library.include_router(payments, prefix="/billing")
    path = library.url_path_for("payments:webhook", provider="fake")
    baseline_engine = create_engine(DatabaseSettings(url=baseline_url))
    baseline, metadata = baseline_app(baseline_engine)
    results: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(baseline_engine.dispose)
        async with baseline_engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        baseline_client = await stack.enter_async_context(asgi_client(baseline))
        library_client = await stack.enter_async_context(asgi_client(library))
        fake = fake_provider(payments)
        existing = await paid_checkout_events(payments, events + 10)
        unknown = unknown_object_events(events + 10, tag="calls")
        library_engine = payments.engine
        statements = Statements()
        sa.event.listen(library_engine.sync_engine, "before_cursor_execute", statements)
        sa.event.listen(baseline_engine.sync_engine, "before_cursor_execute", statements)

        async def post(client: httpx.AsyncClient, url: str, headers: Any, body: bytes, expect: str) -> None:
            response = await client.post(url, content=body, headers=dict(headers))
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")
            status = response.json().get("status")
            if status not in expect.split("|"):
                raise RuntimeError(f"{url} answered {status!r}, expected {expect}: {response.text[:300]}")

        # Warm-up: the first ten of each kind, not counted.
        for bodies, expect in ((existing[:10], "processed|ignored"), (unknown[:10], "ignored")):
            for headers, body in signed(fake, bodies):
                await post(library_client, path, headers, body, expect)
            for headers, body in signed(fake, bodies):
                await post(library_client, path, headers, body, "duplicate")
                await post(baseline_client, "/ingest", headers, body, "stored")
        runs = {
            "new/processed": (library_client, path, existing[10:], "processed|ignored"),
            "new/ignored": (library_client, path, unknown[10:], "ignored"),
            "duplicate": (library_client, path, existing[10:] + unknown[10:], "duplicate"),
            "floor": (baseline_client, "/ingest", existing[10:] + unknown[10:], "stored"),
        }
        for kind, (client, url, bodies, expect) in runs.items():
            deliveries = signed(fake, bodies)
            profiler = cProfile.Profile()
            statements.count = 0
            for headers, body in deliveries:
                profiler.enable()
                await post(client, url, headers, body, expect)
                profiler.disable()
            stats = pstats.Stats(profiler)
            per_function: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
            in_sqlalchemy = sum(
                calls
                for (file, _line, _name), (_cc, calls, *_rest) in per_function.items()
                if "sqlalchemy" in file
            )
            results[kind] = {
                "deliveries": len(deliveries),
                "calls": stats.total_calls / len(deliveries),  # type: ignore[attr-defined]
                "sqlalchemy": in_sqlalchemy / len(deliveries),
                "statements": statements.count / len(deliveries),
            }
            if stats_dir is not None:  # made by main()
                stats.dump_stats(stats_dir / f"{kind.replace('/', '-')}.pstats")
            if top:
                ranked = sorted(per_function.items(), key=lambda item: item[1][1], reverse=True)[:top]
                print(f"--- {kind}: top {top} functions by calls per delivery")
                for (file, line, name), (_cc, calls, *_rest) in ranked:
                    print(f"{calls / len(deliveries):8.1f}  {name}  {file}:{line}")
    return results


async def run(events: int, top: int, stats_dir: Path | None, postgres: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cashier-calls-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'calls'}"
        report["sqlite"] = await measure(url, events, top, stats_dir and stats_dir / "sqlite")
    if postgres:
        async with scratch_postgres(postgres) as url:
            report["postgresql"] = await measure(url, events, top, stats_dir and stats_dir / "postgresql")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100, help="deliveries of each kind (default 100)")
    parser.add_argument("--top", type=int, default=0, help="print the N functions with the most calls")
    parser.add_argument("--stats", type=Path, default=None, help="write DIR/<kind>.pstats")
    parser.add_argument("--postgres", metavar="URL", default=None, help="a postgresql+asyncpg:// URL too")
    args = parser.parse_args(argv)
    if args.stats is not None:
        for database in ("sqlite", "postgresql"):
            (args.stats / database).mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run(args.events, args.top, args.stats, args.postgres))
    print(f"{'database':<11}{'delivery':<15}{'calls':>8}{'in SQLAlchemy':>15}{'statements':>12}")
    for database, kinds in report.items():
        for kind in KINDS:
            row = kinds[kind]
            print(
                f"{database:<11}{kind:<15}{row['calls']:>8.0f}{row['sqlalchemy']:>15.0f}"
                f"{row['statements']:>12.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
