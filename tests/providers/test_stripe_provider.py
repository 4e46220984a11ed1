"""Building the Stripe provider: settings, the pinned API version, one client of its own, the SDK extra."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import httpx
import pytest
import stripe
from pydantic import SecretStr

import fastapi_cashier.providers.stripe
from fastapi_cashier.errors import ConfigurationError, MissingDependencyError, UnsupportedCapabilityError
from fastapi_cashier.providers.base import Capability, PaymentProvider, check_adapter
from fastapi_cashier.providers.stripe import STRIPE_API_VERSION, StripeProvider
from fastapi_cashier.settings import StripeSettings

from .contract import CUSTOMER, ROTATED_SECRET, SECRET, plan
from .stripe_stub import StripeStub

pytestmark = pytest.mark.anyio


async def test_from_settings_uses_the_key_every_secret_and_the_pinned_version(stub: StripeStub) -> None:
    settings = StripeSettings(
        api_key=SecretStr("sk_test_from_settings"),
        webhook_secrets=[SecretStr(SECRET), SecretStr(ROTATED_SECRET)],
    )
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        provider = StripeProvider.from_settings(settings, tolerance_seconds=120, http_client=http_client)
        await provider.create_customer(CUSTOMER, idempotency_key="customer-settings")

    [sent] = stub.requests_to("POST", "/v1/customers")
    assert sent.headers["Authorization"] == "Bearer sk_test_from_settings"
    assert sent.headers["Stripe-Version"] == STRIPE_API_VERSION == provider.api_version
    assert provider.tolerance_seconds == 120
    assert isinstance(provider, PaymentProvider)
    assert provider.name == "stripe"
    assert provider.capabilities == frozenset(Capability) - {
        Capability.CHECKOUT_COMPLETION,
        Capability.CANCELS_AT_PERIOD_END_LOCALLY,
    }
    check_adapter(provider)


async def test_settings_may_pin_another_api_version(stub: StripeStub) -> None:
    settings = StripeSettings(
        api_key=SecretStr("sk_test_x"), webhook_secrets="whsec_a,whsec_b", api_version="2025-03-31.basil"
    )
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        provider = StripeProvider.from_settings(settings, tolerance_seconds=300, http_client=http_client)
        await provider.create_customer(CUSTOMER, idempotency_key="customer-version")

    assert stub.requests[0].headers["Stripe-Version"] == "2025-03-31.basil"


async def test_the_key_stays_on_the_providers_client(stub: StripeStub) -> None:
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        first = StripeProvider(api_key="sk_test_first", webhook_secrets=[SECRET], http_client=http_client)
        second = StripeProvider(api_key="sk_test_second", webhook_secrets=[SECRET], http_client=http_client)
        await first.create_customer(CUSTOMER, idempotency_key="customer-first")
        await second.create_customer(CUSTOMER, idempotency_key="customer-second")

    assert [r.headers["Authorization"] for r in stub.requests] == [
        "Bearer sk_test_first",
        "Bearer sk_test_second",
    ]
    assert stripe.api_key is None


async def test_base_addresses_point_the_client_elsewhere() -> None:
    seen: list[httpx.URL] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"id": "cus_1", "object": "customer", "metadata": {}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as http_client:
        provider = StripeProvider(
            api_key="sk_test_x",
            webhook_secrets=[SECRET],
            http_client=http_client,
            base_addresses={"api": "http://127.0.0.1:9/"},
        )
        await provider.create_customer(CUSTOMER, idempotency_key="customer-address")

    assert str(seen[0]) == "http://127.0.0.1:9/v1/customers"


async def test_an_unknown_base_address_is_refused() -> None:
    async with httpx.AsyncClient() as http_client:
        with pytest.raises(ConfigurationError, match="unknown Stripe base address 'web'"):
            StripeProvider(
                api_key="sk_test_x",
                webhook_secrets=[SECRET],
                http_client=http_client,
                base_addresses={"web": "x"},
            )


async def test_a_synchronous_sdk_call_is_refused_instead_of_blocking(stripe_provider: StripeProvider) -> None:
    with pytest.raises(RuntimeError, match="asynchronous calls only"):
        stripe_provider.client.v1.customers.create({"email": "blocking@example.com"})


async def test_the_provider_closes_only_the_http_client_it_made() -> None:
    async with httpx.AsyncClient() as given:
        borrowing = StripeProvider(api_key="sk_test_x", webhook_secrets=[SECRET], http_client=given)
        await borrowing.aclose()
        assert not given.is_closed
    owning = StripeProvider(api_key="sk_test_x", webhook_secrets=[SECRET])
    first = owning._http_client
    await owning.aclose()
    assert first.is_closed
    # A router started again after a shutdown goes on with fresh connections.
    assert not owning._http_client.is_closed
    await owning.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"api_key": ""}, "needs an API key"), ({"tolerance_seconds": -1}, "cannot be negative")],
)
async def test_unusable_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"api_key": "sk_test_x", "webhook_secrets": [SECRET], **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        StripeProvider(**values)  # type: ignore[arg-type]


async def test_a_host_can_switch_capabilities_off(stub: StripeStub) -> None:
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        provider = StripeProvider(
            api_key="sk_test_x",
            webhook_secrets=[SECRET],
            http_client=http_client,
            capabilities=set(Capability) - {Capability.PAUSE, Capability.CATALOG_SYNC},
        )
        with pytest.raises(UnsupportedCapabilityError, match="does not support catalog_sync"):
            await provider.sync_catalog([plan()])
        with pytest.raises(UnsupportedCapabilityError, match="does not support pause"):
            await provider.pause_subscription("sub_1", idempotency_key="pause")

    assert Capability.PAUSE not in provider.capabilities
    assert stub.requests == []


def test_building_the_provider_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "stripe", None)  # as if the extra were not installed

    with pytest.raises(MissingDependencyError, match=r"pip install 'fastapi-cashier\[stripe\]'"):
        StripeProvider(api_key="sk_test_x", webhook_secrets=[SECRET])


def _imports_stripe_at_module_level(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.If):
            continue  # ``if TYPE_CHECKING:`` blocks
        if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "stripe" for alias in node.names):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "stripe"
        ):
            return True
    return False


def test_importing_the_adapter_does_not_import_the_sdk() -> None:
    package = Path(fastapi_cashier.providers.stripe.__file__).parent
    modules = sorted(package.glob("*.py"))

    assert len(modules) > 5
    assert [m.name for m in modules if _imports_stripe_at_module_level(ast.parse(m.read_text()))] == []
