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
import cProfile
import pstats
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webhook_ingest import (
    both_apps,
    fake_provider,
    library_settings,
    paid_checkout_events,
    scratch_postgres,
    signed,
    unknown_object_events,
)

KINDS = ("new/processed", "new/ignored", "duplicate", "floor")


class Statements:
    """Counts the statements an engine sends (``before_cursor_execute``)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any) -> None:
        self.count += 1


async def measure(database_url: str, events: int, top: int, stats_dir: Path | None) -> dict[str, Any]:
    # As in webhook_ingest.py, without the background retry loop, whose statements would be
    # counted with the deliveries they happen to run next to.
    settings = library_settings(
        f"{database_url}-library.db" if database_url.startswith("sqlite") else database_url
    )
    settings = settings.model_copy(
        update={"webhooks": settings.webhooks.model_copy(update={"retry_loop": False})}
    )
    results: dict[str, Any] = {}
    async with both_apps(database_url, settings) as apps:
        library_client, path, baseline_client = apps.library, apps.library_path, apps.baseline
        fake = fake_provider(apps.payments)
        existing = await paid_checkout_events(apps.payments, events + 10)
        unknown = unknown_object_events(events + 10, tag="calls")
        statements = Statements()
        sa.event.listen(apps.payments.engine.sync_engine, "before_cursor_execute", statements)
        sa.event.listen(apps.baseline_engine.sync_engine, "before_cursor_execute", statements)

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
