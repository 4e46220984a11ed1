"""LemonSqueezyProvider on its own, against the in-process server: catalog links, lookups, lost answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fastapi_cashier.billing.provider_calls import RetryingProvider
from fastapi_cashier.errors import (
    CurrencyMismatchError,
    InvalidProviderRequestError,
    ProviderConnectionError,
    UnsupportedCapabilityError,
)
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import (
    Capability,
    CheckoutRequest,
    CheckoutSnapshot,
    CustomerRef,
    PaymentSnapshot,
    PlanRef,
    RefundRequest,
    SubscriptionSnapshot,
    check_adapter,
)
from fastapi_cashier.providers.lemonsqueezy import SUBSCRIBED_EVENTS, LemonSqueezyProvider
from fastapi_cashier.providers.lemonsqueezy._base import UnsettledError
from fastapi_cashier.settings import ProviderCallSettings
from fastapi_cashier.statuses import BillingInterval, CheckoutSessionStatus, PaymentStatus, RefundStatus

from .lemonsqueezy_server import LemonSqueezyServer, Variant

pytestmark = pytest.mark.anyio

CUSTOMER = CustomerRef(id=uuid.UUID(int=7), external_id="user-7", email="grace@example.com", name="Grace")


@pytest.fixture
async def store() -> AsyncIterator[tuple[LemonSqueezyServer, LemonSqueezyProvider]]:
    server = LemonSqueezyServer(currency="EUR")
    server.add_product(
        "Pro", [Variant(11, 0, "Pro monthly", 1500), Variant(12, 0, "Pro yearly", 15000, interval="year")]
    )
    server.add_product("Payment", [Variant(21, 0, "Default", 100, is_subscription=False, interval=None)])
    async with httpx.AsyncClient(transport=server.transport()) as http:
        provider = LemonSqueezyProvider(
            api_key=server.api_key,
            store_id=str(server.store_id),
            webhook_secrets=["secret-1"],
            api_base="https://ls.test/v1",
            http_client=http,
            plan_variants={"Legacy": "12"},
        )
        yield server, provider


def plan(name: str, amount: int, interval: BillingInterval = BillingInterval.MONTH) -> PlanRef:
    return PlanRef(id=uuid.uuid4(), name=name, unit_amount=Money(amount, "EUR"), interval=interval)


def checkout(**overrides: object) -> CheckoutRequest:
    session_id = uuid.uuid4()
    values: dict[str, object] = {
        "session_id": session_id,
        "idempotency_key": f"checkout-{session_id}",
        "mode": "payment",
        "customer": CUSTOMER,
        "success_url": "https://shop.example/thanks",
        "cancel_url": "https://shop.example/cart",
        "expires_at": datetime.now(UTC) + timedelta(hours=2),
        "amount": Money(1000, "EUR"),
        "description": "Ticket",
        "metadata": {"checkout_session_id": str(session_id), "customer_id": str(CUSTOMER.id)},
    }
    values.update(overrides)
    return CheckoutRequest(**values)  # type: ignore[arg-type]


def refund(payment_id: str, amount: int, **ledger: Any) -> RefundRequest:
    refund_id = ledger.pop("refund_id", uuid.uuid4())
    values: dict[str, Any] = {"refunded_before": 0, **ledger}
    return RefundRequest(refund_id, f"refund-{refund_id}", payment_id, Money(amount, "EUR"), **values)


async def test_the_adapter_satisfies_the_protocol_for_every_declared_capability(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    _, provider = store
    check_adapter(provider)
    assert provider.idempotency_keys is False
    assert Capability.CANCEL_NOW not in provider.capabilities
    assert Capability.CANCEL_AT_PERIOD_END in provider.capabilities


async def test_plans_link_by_mapping_by_name_and_interval_or_by_price(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    _, provider = store
    by_name = plan("Pro monthly", 1400)
    by_price = plan("Professional, yearly", 15000, BillingInterval.YEAR)
    mapped = plan("Legacy", 15000, BillingInterval.YEAR)
    unmatched = plan("Weekly", 100, BillingInterval.WEEK)

    found = await provider.link_catalog([by_name, by_price, mapped, unmatched])

    assert found.links == {by_name.id: "11", by_price.id: "12", mapped.id: "12"}
    assert [p.name for p in found.unmatched] == ["Weekly"]
    ((difference),) = found.price_differences
    assert (difference.plan_name, difference.plan_amount, difference.variant_amount) == (
        "Pro monthly",
        1400,
        1500,
    )
    with pytest.raises(InvalidProviderRequestError, match="Weekly"):
        await provider.sync_catalog([by_name, unmatched])


async def test_a_mapping_to_a_variant_of_another_store_is_refused(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    _, provider = store
    provider.plan_variants = {"Pro monthly": "999"}

    with pytest.raises(InvalidProviderRequestError, match="not in store"):
        await provider.link_catalog([plan("Pro monthly", 1500)])


async def test_a_checkout_is_found_again_by_its_session_id(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    _, provider = store
    request = checkout()
    created = await provider.create_checkout(request)

    found = await provider.lookup("checkout_session", str(request.session_id))
    missing = await provider.lookup("checkout_session", str(uuid.uuid4()))

    assert isinstance(found, CheckoutSnapshot)
    assert (found.provider_session_id, found.url, found.status) == (
        created.provider_session_id,
        created.url,
        CheckoutSessionStatus.OPEN,
    )
    assert missing is None


async def test_a_refund_whose_answer_was_lost_is_settled_by_the_retry_wrapper_not_sent_twice(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    server, provider = store
    created = await provider.create_checkout(checkout())
    order_id = await server.complete_checkout(int(created.provider_session_id), deliver=False)
    path = f"/v1/orders/{order_id}/refund"
    server.lose_answers.add(("POST", path))
    retrying = RetryingProvider(provider, ProviderCallSettings(max_attempts=3, backoff_seconds=0))

    result = await retrying.refund(refund(f"orders/{order_id}", 400))

    assert (result.status, result.provider_refund_id) == (RefundStatus.SUCCEEDED, None)
    assert server.requests.count(("POST", path)) == 1
    assert server.orders[order_id]["refunded_amount"] == 400
    assert retrying.faults


async def test_a_resent_refund_is_settled_from_the_orders_refunded_amount_on_a_fresh_adapter(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    server, provider = store
    created = await provider.create_checkout(checkout())
    order_id = await server.complete_checkout(int(created.provider_session_id), deliver=False)
    path = f"/v1/orders/{order_id}/refund"
    first = refund(f"orders/{order_id}", 300)
    await provider.refund(first)
    fresh = LemonSqueezyProvider(
        api_key=server.api_key,
        store_id=str(server.store_id),
        webhook_secrets=["secret-1"],
        api_base="https://ls.test/v1",
        http_client=httpx.AsyncClient(transport=server.transport()),
    )

    # Lemon Squeezy keeps no id of a refund: a look-up cannot find it, the resend settles it.
    assert await fresh.lookup("refund", str(first.refund_id)) is None
    again = refund(f"orders/{order_id}", 300, refund_id=first.refund_id, resent=True)
    assert (await fresh.refund(again)).status is RefundStatus.SUCCEEDED
    assert server.requests.count(("POST", path)) == 1
    assert server.orders[order_id]["refunded_amount"] == 300

    # A resent refund that never arrived (the ledger already holds the first one) is sent.
    never = refund(f"orders/{order_id}", 200, refunded_before=300, resent=True)
    assert (await fresh.refund(never)).status is RefundStatus.SUCCEEDED
    assert server.requests.count(("POST", path)) == 2
    assert server.orders[order_id]["refunded_amount"] == 500
    await fresh.aclose()


async def test_a_resent_refund_that_totals_cannot_tell_apart_is_not_sent(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    server, provider = store
    created = await provider.create_checkout(checkout())
    order_id = await server.complete_checkout(int(created.provider_session_id), deliver=False)
    path = f"/v1/orders/{order_id}/refund"
    await provider.refund(refund(f"orders/{order_id}", 300))

    # 300 more than the ledger's succeeded refunds, and another refund of 300 is unconfirmed.
    ambiguous = refund(f"orders/{order_id}", 300, pending_before=300, resent=True)
    with pytest.raises(UnsettledError) as caught:
        await provider.refund(ambiguous)
    assert caught.value.retriable
    with pytest.raises(InvalidProviderRequestError, match="refunded_before"):
        await provider.refund(refund(f"orders/{order_id}", 100, refunded_before=None, resent=True))
    assert server.requests.count(("POST", path)) == 1
    assert server.orders[order_id]["refunded_amount"] == 300


async def test_fetch_reads_orders_invoices_subscriptions_and_checkouts(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    server, provider = store
    paid = await provider.create_checkout(checkout())
    order_id = await server.complete_checkout(int(paid.provider_session_id), deliver=False)
    subscription_checkout = await provider.create_checkout(
        checkout(
            mode="subscription",
            amount=None,
            plan=PlanRef(
                id=uuid.uuid4(),
                name="Pro",
                unit_amount=Money(1500, "EUR"),
                interval=BillingInterval.MONTH,
                provider_price_id="11",
            ),
            quantity=2,
        )
    )
    await server.complete_checkout(int(subscription_checkout.provider_session_id), deliver=False)
    (subscription_id,) = server.subscriptions
    (invoice_id,) = server.invoices

    order = await provider.fetch("payment", f"orders/{order_id}")
    invoice_payment = await provider.fetch("payment", f"subscription-invoices/{invoice_id}")
    subscription = await provider.fetch("subscription", str(subscription_id))
    open_checkout = await provider.fetch("checkout_session", paid.provider_session_id)

    assert isinstance(order, PaymentSnapshot)
    assert (order.status, order.amount) == (PaymentStatus.SUCCEEDED, Money(1000, "EUR"))
    assert isinstance(invoice_payment, PaymentSnapshot)
    assert (invoice_payment.amount, invoice_payment.provider_subscription_id) == (
        Money(3000, "EUR"),
        str(subscription_id),
    )
    assert isinstance(subscription, SubscriptionSnapshot)
    assert (subscription.quantity, subscription.provider_price_id) == (2, "11")
    assert isinstance(open_checkout, CheckoutSnapshot)
    with pytest.raises(InvalidProviderRequestError):
        await provider.fetch("refund", "1")


async def test_a_checkout_is_expired_by_the_adapters_own_clock(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    _, provider = store
    created = await provider.create_checkout(checkout(expires_at=datetime.now(UTC) + timedelta(hours=2)))
    moments = iter([datetime.now(UTC), datetime.now(UTC) + timedelta(hours=3)])
    provider._clock = lambda: next(moments)
    before = await provider.fetch("checkout_session", created.provider_session_id)
    after = await provider.fetch("checkout_session", created.provider_session_id)
    assert isinstance(before, CheckoutSnapshot)
    assert isinstance(after, CheckoutSnapshot)
    assert (before.status, after.status) == (CheckoutSessionStatus.OPEN, CheckoutSessionStatus.EXPIRED)


async def test_cancel_now_is_refused_before_any_call(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    server, provider = store

    with pytest.raises(UnsupportedCapabilityError, match="cancel_now"):
        await provider.cancel_subscription("5", at_period_end=False, idempotency_key="cancel-5")
    assert server.requests == []


async def test_register_webhook_subscribes_every_mapped_event(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    server, provider = store

    created = await provider.register_webhook("https://shop.example/billing/webhooks/lemonsqueezy")

    (webhook,) = server.webhooks.values()
    assert created["attributes"]["events"] == list(SUBSCRIBED_EVENTS)
    assert webhook["_secret"] == "secret-1"


async def test_a_connection_fault_on_a_read_is_retriable(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    server, provider = store
    server.lose_answers.add(("GET", "/v1/subscriptions/5"))

    with pytest.raises(ProviderConnectionError):
        await provider.fetch("subscription", "5")


async def test_an_id_that_is_not_a_lemon_squeezy_id_is_refused(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider],
) -> None:
    _, provider = store

    with pytest.raises(InvalidProviderRequestError):
        await provider.fetch("subscription", "../stores/1")
    with pytest.raises(InvalidProviderRequestError):
        await provider.refund(refund("payments/7", 100))


@pytest.mark.parametrize("mode", ["payment", "subscription"])
async def test_a_price_in_another_currency_is_refused_as_invalid_input_before_any_checkout(
    store: tuple[LemonSqueezyServer, LemonSqueezyProvider], mode: str
) -> None:
    server, provider = store
    in_dollars = PlanRef(
        id=uuid.uuid4(),
        name="Pro monthly",
        unit_amount=Money(1500, "USD"),
        interval=BillingInterval.MONTH,
        provider_price_id="11",
    )
    request = (
        checkout(amount=Money(1000, "USD"))
        if mode == "payment"
        else checkout(mode="subscription", amount=None, plan=in_dollars)
    )

    with pytest.raises(CurrencyMismatchError) as refused:
        await provider.create_checkout(request)

    assert refused.value.field == "currency"
    assert refused.value.details == {"field": "currency", "currency": "USD", "store_currency": "EUR"}
    assert "sells in EUR" in refused.value.message
    assert server.checkouts == {}
