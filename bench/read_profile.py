"""Python function calls per request of the four read-path endpoints: library, surface, baseline.

The three apps of ``read_apps.py`` (the library mounted at ``/billing``; the hand-written FastAPI
+ SQLAlchemy endpoints; and "surface", those hand-written endpoints in the library's route table
with the library's query parameters) run in this process over one seeded SQLite file and are
driven through ``httpx.ASGITransport`` (no server, no sockets, the client's own calls included on
every side). For each endpoint of ``read_path.py`` (``GET /payments?limit=50``, ``GET /me`` for a
known and a new subject, ``GET /admin/payments?limit=50``) the script counts, with cProfile, the
Python function calls per request of each app, and with SQLAlchemy ``before_cursor_execute``
events the statements per request (``--sql`` prints those of one request). ``--top N`` lists
where the library's calls go, grouped by package (library / surface / baseline), and ``--stats
DIR`` writes each profile as ``DIR/<app>-<endpoint>.pstats``.

Call and statement counts do not depend on the machine's load, so they can be compared between
runs on a busy machine where requests/s cannot. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import sqlalchemy as sa
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent))

import read_apps
from read_path import ENDPOINTS, JWT_SECRET, Endpoint, seed, token


def package_of(filename: str) -> str:
    """A short name for where a function lives: the package under site-packages, or the module."""
    if filename.startswith(("~", "<")):
        return "builtins"
    parts = Path(filename).parts
    for marker in ("site-packages", "src"):
        if marker in parts:
            index = parts.index(marker)
            rest = parts[index + 1 :]
            if rest and rest[0] == "fastapi_cashier" and len(rest) > 2:
                return "/".join(rest[:2])
            return rest[0] if rest else filename
    return Path(filename).name


#: The apps of ``read_apps.py`` profiled, by name: their factories, in the report's order.
APPS = {
    "library": read_apps.library_app,
    "surface": read_apps.surface_app,
    "baseline": read_apps.baseline_app,
}


async def measure(
    app: FastAPI, name: str, endpoint: Endpoint, requests: int, *, show_sql: bool = False
) -> tuple[cProfile.Profile, cProfile.Profile, float]:
    statements = 0
    sent: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        nonlocal statements
        statements += 1
        if len(sent) < 20:
            sent.append(" ".join(statement.split())[:100])

    path = endpoint.path(name)
    profiler = cProfile.Profile()
    # Sync dependencies and endpoints run in anyio's worker threads, which a profiler enabled
    # on this thread does not see: profile them with a second profiler, merged afterwards.
    threaded = cProfile.Profile()
    run_sync = anyio.to_thread.run_sync
    profiling = False

    async def run_sync_profiled(func: Any, *args: Any, **kwargs: Any) -> Any:
        if not profiling:
            return await run_sync(func, *args, **kwargs)
        return await run_sync(lambda: threaded.runcall(func, *args), **kwargs)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.invalid") as client:
        for index in range(-5, requests):  # five warm-up requests: caches, the pool
            headers = {"Authorization": f"Bearer {token(endpoint.subject(index), admin=endpoint.admin)}"}
            if index == 0:
                engine = app.state.bench_engine()
                sa.event.listen(engine, "before_cursor_execute", count)
            profiling = index >= 0
            anyio.to_thread.run_sync = run_sync_profiled  # type: ignore[assignment]
            try:
                if profiling:
                    profiler.enable()
                response = await client.get(path, headers=headers)
                if profiling:
                    profiler.disable()
            finally:
                anyio.to_thread.run_sync = run_sync
            response.raise_for_status()
    sa.event.remove(app.state.bench_engine(), "before_cursor_execute", count)
    if show_sql:
        per_request = round(statements / requests)
        print(f"{name} {endpoint.name}: the SQL of the first request")
        for statement in sent[:per_request]:
            print(f"    {statement}")
    return profiler, threaded, statements / requests


def calls(profiler: cProfile.Profile, threaded: cProfile.Profile) -> Counter[str]:
    stats = pstats.Stats(profiler)
    with contextlib.suppress(TypeError):  # an empty profile: nothing ran in a thread
        stats.add(threaded)
    by_package: Counter[str] = Counter()
    for (filename, _line, name), value in stats.stats.items():  # type: ignore[attr-defined]
        key = "isinstance" if name == "<built-in method builtins.isinstance>" else package_of(filename)
        by_package[key] += value[1]
    return by_package


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Row:
    """One endpoint's figures: per app, Python calls by package and statements, per request."""

    endpoint: str
    calls: dict[str, Counter[str]]
    statements: dict[str, float]

    def total(self, app: str, requests: int) -> float:
        return sum(self.calls[app].values()) / requests


async def main_async(options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cashier-read-profile-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'profile.db'}"
        await seed(url, options.payments)
        os.environ[read_apps.DATABASE_ENV] = url
        os.environ[read_apps.SECRET_ENV] = JWT_SECRET
        apps = {name: factory() for name, factory in APPS.items()}
        rows: list[Row] = []
        async with contextlib.AsyncExitStack() as stack:
            for app in apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
            for endpoint in ENDPOINTS:
                row = Row(endpoint.name, {}, {})
                for name, app in apps.items():
                    profile, threaded, statements = await measure(
                        app, name, endpoint, options.requests, show_sql=options.sql
                    )
                    row.calls[name] = calls(profile, threaded)
                    row.statements[name] = statements
                    if options.stats:
                        options.stats.mkdir(parents=True, exist_ok=True)
                        profile.dump_stats(options.stats / f"{name}-{slug(endpoint.name)}.pstats")
                rows.append(row)
    requests = options.requests
    print(f"Python calls per request, {requests} requests per endpoint and app, client included")
    print()
    header = (
        f"{'endpoint':30}  {'library':>8}  {'surface':>8}  {'baseline':>8}  {'lib/base':>8}"
        f"  {'lib/surf':>8}  {'surf/base':>9}  {'stmts lib/surf/base':>19}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        lib, surface, base = (row.total(name, requests) for name in APPS)
        sent = " / ".join(f"{row.statements[name]:g}" for name in APPS)
        print(
            f"{row.endpoint:30}  {lib:8.0f}  {surface:8.0f}  {base:8.0f}  {lib / base:8.2f}"
            f"  {lib / surface:8.2f}  {surface / base:9.2f}  {sent:>19}"
        )
    if options.top:
        for row in rows:
            print(
                f"\n{row.endpoint}: calls per request by package, library / surface / baseline"
                f" (top {options.top})"
            )
            library = row.calls["library"]
            for key in sorted(library, key=lambda key: -library[key])[: options.top]:
                shares = " / ".join(f"{row.calls[name].get(key, 0) / requests:7.0f}" for name in APPS)
                print(f"  {shares}  {key}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--requests", type=int, default=50, help="profiled requests per endpoint (default 50)"
    )
    parser.add_argument("--payments", type=int, default=60, help="seeded payments (default 60)")
    parser.add_argument("--top", type=int, default=0, help="packages to list per endpoint (default none)")
    parser.add_argument("--sql", action="store_true", help="print the SQL of one request of each")
    parser.add_argument("--stats", type=Path, default=None, help="write every profile to this directory")
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
