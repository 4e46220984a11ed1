"""An app with tax on (a German seller) and an in-process VIES served on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter

from ..http.conftest import Harness, settings_for
from ..providers.servers import serve
from .vies_server import VIESState, vies_app

SELLER = {
    "legal_name": "Muster Software GmbH",
    "address_lines": ["Hauptstraße 1", "10115 Berlin", "Germany"],
    "country": "DE",
    "vat_number": "DE136695976",
    "email": "billing@muster.example",
}
#: Registered at the in-process VIES.
VALID_FR = "FR40303265045"
#: Well-formed, but France's register "is down" for it (see ``vies``).
UNCONFIRMED_FR = "FR 83 404 833 048"


@pytest.fixture(scope="session")
def vies() -> Iterator[tuple[VIESState, str]]:
    """The in-process VIES and its base address; ``FR83404833048`` answers MS_UNAVAILABLE."""
    state = VIESState(
        valid={VALID_FR: ("SA EXEMPLE", "1 RUE DE LA PAIX 75002 PARIS")},
        unavailable_numbers={UNCONFIRMED_FR.replace(" ", "")},
    )
    app = vies_app(state)

    async def route(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)

    with serve(route) as base_url:
        yield state, f"{base_url}/rest-api"


def tax_settings(vies_url: str, **tax: Any) -> dict[str, Any]:
    return {"seller": SELLER, "vies": {"base_url": vies_url, "timeout_seconds": 5}, **tax}


@contextlib.asynccontextmanager
async def running(database_url: str, vies_url: str, **tax: Any) -> AsyncIterator[Harness]:
    """The router at /billing with a German seller and ``tax`` settings on top."""
    settings = settings_for(
        database_url,
        database={"url": database_url, "create_tables": False},
        tax=tax_settings(vies_url, **tax),
    )
    payments = PaymentsRouter(settings)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app=app, payments=payments, client=client, settings=settings)


@pytest.fixture
async def tax_harness(engine: Any, database_url: str, vies: tuple[VIESState, str]) -> AsyncIterator[Harness]:
    """Tax on, prices tax-inclusive (the same gross price for every buyer)."""
    async with running(database_url, vies[1], prices_include_tax=True) as harness:
        yield harness


@pytest.fixture
async def exclusive_harness(
    engine: Any, database_url: str, vies: tuple[VIESState, str]
) -> AsyncIterator[Harness]:
    """Tax on, prices tax-exclusive (net prices; the tax is added)."""
    async with running(database_url, vies[1], prices_include_tax=False) as harness:
        yield harness
