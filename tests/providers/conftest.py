"""Fixtures of the provider tests: the Stripe stub, a Stripe provider talking to it, localstripe;
the PayPal sandbox, a client on it and a host app on it (from :mod:`.paypal_sandbox.fixtures`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from fastapi_cashier.providers.stripe import StripeProvider

from .contract import ROTATED_SECRET, SECRET, Clock
from .paypal_sandbox.fixtures import paypal_client, paypal_host, paypal_sandbox  # noqa: F401 - fixtures
from .servers import localstripe_installed, run_localstripe
from .stripe_stub import StripeStub


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stub(clock: Clock) -> StripeStub:
    return StripeStub(clock=lambda: clock.unix)


@pytest.fixture
async def stripe_provider(stub: StripeStub, clock: Clock) -> AsyncIterator[StripeProvider]:
    """A provider whose every request goes to ``stub`` (the SDK does not retry: failures show at once)."""
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        yield StripeProvider(
            api_key="sk_test_stub",
            webhook_secrets=[SECRET, ROTATED_SECRET],
            http_client=http_client,
            max_network_retries=0,
            clock=clock,
        )


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """The base URL of a localstripe server on 127.0.0.1, shared by the tests of a worker."""
    if not localstripe_installed():
        pytest.skip("localstripe is not installed (a test-only tool: pip install -e '.[test]')")
    with run_localstripe() as url:
        yield url


@pytest.fixture
def own_localstripe() -> Iterator[str]:
    """A localstripe of the test's own: the shared one may still send events of earlier tests
    (it waits a second before each delivery) to whatever endpoints are registered by then."""
    if not localstripe_installed():
        pytest.skip("localstripe is not installed (a test-only tool: pip install -e '.[test]')")
    with run_localstripe() as url:
        yield url


def localstripe_provider(url: str, http_client: httpx.AsyncClient) -> StripeProvider:
    """A provider on the localstripe at ``url`` (the SDK does not retry: failures show at once)."""
    return StripeProvider(
        api_key="sk_test_localstripe",
        webhook_secrets=[SECRET, ROTATED_SECRET],
        base_addresses={"api": url},
        http_client=http_client,
        max_network_retries=0,
    )


@pytest.fixture
async def own_provider(own_localstripe: str) -> AsyncIterator[StripeProvider]:
    async with httpx.AsyncClient() as http_client:
        yield localstripe_provider(own_localstripe, http_client)
