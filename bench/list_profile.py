"""Python function calls per request and per row of ``GET /payments``, counted with cProfile.

The library is mounted in process (``httpx.ASGITransport``, no server, no sockets) over a SQLite
file seeded with one customer and ``--payments`` payments. The script sends ``--requests``
requests of ``GET /billing/payments?limit=1`` and as many of ``limit=50`` under cProfile and
reports the function calls per request for each, and their difference divided by 49: the calls
that each further row costs (loading, validating, serialising it). ``--top N`` prints the
functions with the most calls per row, and ``--stats FILE`` writes the ``limit=50`` profile.

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

import httpx
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from read_path import JWT_SECRET, KNOWN, seed, token
from webhook_ingest import BenchSettings

ROWS = 50


async def profile(database_url: str, requests: int, limit: int) -> cProfile.Profile:
    settings = BenchSettings(
        environment="test",
        database={"url": database_url, "create_tables": False},
        auth={"jwt_secret": JWT_SECRET},
        webhooks={"retry_loop": False},
    )
    app = FastAPI()
    app.include_router(PaymentsRouter(settings), prefix="/billing")
    headers = {"Authorization": f"Bearer {token(KNOWN, admin=False)}"}
    profiler = cProfile.Profile()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.invalid") as client:
            for _ in range(5):  # warm-up: imports, statement caches, the pool
                (await client.get(f"/billing/payments?limit={limit}", headers=headers)).raise_for_status()
            for _ in range(requests):
                profiler.enable()
                response = await client.get(f"/billing/payments?limit={limit}", headers=headers)
                profiler.disable()
                response.raise_for_status()
                if len(response.json()["items"]) != limit:
                    raise RuntimeError(f"expected {limit} items, got {response.text[:200]}")
    return profiler


def calls(profiler: cProfile.Profile) -> dict[tuple[str, int, str], int]:
    stats = pstats.Stats(profiler)
    return {key: value[1] for key, value in stats.stats.items()}  # type: ignore[attr-defined]


async def main_async(options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="cashier-profile-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'profile.db'}"
        await seed(url, options.payments)
        one = await profile(url, options.requests, 1)
        many = await profile(url, options.requests, ROWS)
    per_one, per_many = calls(one), calls(many)
    total_one = sum(per_one.values()) / options.requests
    total_many = sum(per_many.values()) / options.requests
    print(f"GET /payments?limit=1   {total_one:8.0f} Python calls per request")
    print(f"GET /payments?limit={ROWS}  {total_many:8.0f} Python calls per request")
    print(f"per further row          {(total_many - total_one) / (ROWS - 1):8.1f} calls")
    if options.top:
        growth = {
            key: (per_many.get(key, 0) - per_one.get(key, 0)) / options.requests / (ROWS - 1)
            for key in per_many
        }
        print(f"\nfunctions with the most calls per row (top {options.top}):")
        ranked = sorted(growth.items(), key=lambda item: -item[1])[: options.top]
        for (filename, line, name), per_row in ranked:
            if per_row < 0.5:
                break
            short = "/".join(Path(filename).parts[-2:])
            print(f"  {per_row:5.1f}  {name}  ({short}:{line})")
    if options.stats:
        many.dump_stats(options.stats)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=50, help="profiled requests per limit (default 50)")
    parser.add_argument("--payments", type=int, default=60, help="seeded payments (default 60)")
    parser.add_argument("--top", type=int, default=25, help="functions to list by calls per row (0: none)")
    parser.add_argument("--stats", type=Path, default=None, help="write the limit=50 profile to this file")
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
