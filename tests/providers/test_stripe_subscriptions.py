"""Subscription changes, cancel, resume, pause and metered usage against the Stripe stub."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from fastapi_cashier.errors import InvalidProviderRequestError
from fastapi_cashier.providers.base import PlanRef, SubscriptionChange, UsageReport
from fastapi_cashier.providers.stripe import StripeProvider
from fastapi_cashier.statuses import PricingModel, ProrationBehavior, SubscriptionStatus

from .contract import Clock, plan, synced
from .stripe_stub import StripeStub

pytestmark = pytest.mark.anyio

LOCAL_SUBSCRIPTION = uuid.UUID(int=99)


async def subscribed(provider: StripeProvider, stub: StripeStub, ref: PlanRef, quantity: int = 2) -> str:
    """A live subscription to ``ref`` (synced first); its Stripe id."""
    synced_ref = await synced(provider, ref)
    customer = stub._create_customer({"email": "grace@example.com"})["id"]
    subscription, _, _ = stub.add_subscription(
        customer, stub.find("price", synced_ref.provider_price_id or ""), quantity, metadata={}
    )
    return str(subscription["id"])


def change(subscription_id: str, **fields: Any) -> SubscriptionChange:
    return SubscriptionChange(
        subscription_id=LOCAL_SUBSCRIPTION,
        idempotency_key=f"change-{len(fields)}-{sorted(fields)}",
        provider_subscription_id=subscription_id,
        **fields,
    )


async def test_a_quantity_change_is_prorated_as_asked(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())
    item_id = stub.find("subscription", sub_id)["items"]["data"][0]["id"]

    result = await stripe_provider.update_subscription(
        change(sub_id, quantity=5, proration=ProrationBehavior.NONE)
    )

    [sent] = stub.requests_to("POST", f"/v1/subscriptions/{sub_id}")
    assert sent.params == {
        "items": [{"id": item_id, "quantity": "5"}],
        "proration_behavior": "none",
        "metadata": {"subscription_id": str(LOCAL_SUBSCRIPTION)},
    }
    assert (
        sent.headers["Idempotency-Key"]
        == change(sub_id, quantity=5, proration=ProrationBehavior.NONE).idempotency_key
    )
    assert (result.snapshot.status, result.snapshot.quantity) == (SubscriptionStatus.ACTIVE, 5)


async def test_a_plan_change_moves_the_item_to_the_new_price(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())
    team = await synced(stripe_provider, plan(4900, id=uuid.UUID(int=50), name="Team"))

    result = await stripe_provider.update_subscription(
        change(sub_id, plan=team, proration=ProrationBehavior.ALWAYS_INVOICE)
    )

    [sent] = stub.requests_to("POST", f"/v1/subscriptions/{sub_id}")
    assert sent.params["items"][0]["price"] == team.provider_price_id
    assert "quantity" not in sent.params["items"][0]
    assert sent.params["proration_behavior"] == "always_invoice"
    assert result.snapshot.provider_price_id == team.provider_price_id


async def test_a_move_to_a_metered_plan_sends_no_quantity(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())
    metered = await synced(stripe_provider, plan(3, id=uuid.UUID(int=51), pricing_model=PricingModel.METERED))

    await stripe_provider.update_subscription(change(sub_id, plan=metered, quantity=4))

    [sent] = stub.requests_to("POST", f"/v1/subscriptions/{sub_id}")
    assert sent.params["items"][0] == {
        "id": stub.find("subscription", sub_id)["items"]["data"][0]["id"],
        "price": metered.provider_price_id,
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give a plan and/or a quantity"),
        ({"quantity": 0}, "at least 1"),
        ({"plan": plan()}, "no Stripe price"),
    ],
)
async def test_impossible_changes_are_refused_before_stripe_is_asked(
    stripe_provider: StripeProvider, stub: StripeStub, fields: dict[str, Any], message: str
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan(id=uuid.UUID(int=60)))
    with pytest.raises(InvalidProviderRequestError, match=message):
        await stripe_provider.update_subscription(change(sub_id, **fields))
    assert stub.requests_to("POST", f"/v1/subscriptions/{sub_id}") == []


async def test_cancel_at_the_period_end_and_resume(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())

    scheduled = await stripe_provider.cancel_subscription(
        sub_id, at_period_end=True, idempotency_key="cancel-1"
    )
    resumed = await stripe_provider.resume_subscription(sub_id, idempotency_key="resume-1")

    first, second = stub.requests_to("POST", f"/v1/subscriptions/{sub_id}")
    assert (first.params, first.headers["Idempotency-Key"]) == ({"cancel_at_period_end": "true"}, "cancel-1")
    assert (second.params, second.headers["Idempotency-Key"]) == (
        {"cancel_at_period_end": "false"},
        "resume-1",
    )
    assert (scheduled.snapshot.status, scheduled.snapshot.cancel_at_period_end) == (
        SubscriptionStatus.ACTIVE,
        True,
    )
    assert resumed.snapshot.cancel_at_period_end is False


async def test_cancel_now_and_a_retry_of_it(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())

    canceled = await stripe_provider.cancel_subscription(
        sub_id, at_period_end=False, idempotency_key="cancel-now"
    )
    # A retry with a new key (the first answer was lost) finds it already canceled.
    again = await stripe_provider.cancel_subscription(
        sub_id, at_period_end=False, idempotency_key="cancel-again"
    )

    [first, _] = stub.requests_to("DELETE", f"/v1/subscriptions/{sub_id}")
    assert first.headers["Idempotency-Key"] == "cancel-now"
    assert canceled.snapshot.status is SubscriptionStatus.CANCELED
    assert canceled.snapshot.ended_at == clock()
    assert again.snapshot == canceled.snapshot


async def test_cancel_now_of_an_unknown_subscription_is_refused(stripe_provider: StripeProvider) -> None:
    with pytest.raises(InvalidProviderRequestError) as raised:
        await stripe_provider.cancel_subscription("sub_missing", at_period_end=False, idempotency_key="x")
    assert raised.value.provider_code == "resource_missing"


async def test_pause_and_resume_collection(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())

    paused = await stripe_provider.pause_subscription(sub_id, idempotency_key="pause-1")
    resumed = await stripe_provider.resume_subscription(sub_id, idempotency_key="resume-1")

    pause, resume = stub.requests_to("POST", f"/v1/subscriptions/{sub_id}")
    assert pause.params == {"pause_collection": {"behavior": "void"}}
    assert resume.params == {"pause_collection": ""}
    assert (paused.snapshot.status, paused.snapshot.paused) == (SubscriptionStatus.PAUSED, True)
    assert (resumed.snapshot.status, resumed.snapshot.paused) == (SubscriptionStatus.ACTIVE, False)


async def test_a_paused_status_is_resumed_through_the_resume_endpoint(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())
    stub.find("subscription", sub_id)["status"] = "paused"  # a trial ended without a payment method

    resumed = await stripe_provider.resume_subscription(sub_id, idempotency_key="resume-paused")

    [sent] = stub.requests_to("POST", f"/v1/subscriptions/{sub_id}/resume")
    assert sent.headers["Idempotency-Key"] == "resume-paused"
    assert resumed.snapshot.status is SubscriptionStatus.ACTIVE


async def test_a_cancel_scheduled_with_cancel_at_is_undone(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())
    stub.find("subscription", sub_id)["cancel_at"] = stub.clock() + 86400  # set in the Dashboard

    await stripe_provider.resume_subscription(sub_id, idempotency_key="resume-cancel-at")

    [sent] = stub.requests_to("POST", f"/v1/subscriptions/{sub_id}")
    assert sent.params == {"cancel_at": ""}


async def test_nothing_to_resume_is_refused(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())
    with pytest.raises(InvalidProviderRequestError, match="nothing to resume"):
        await stripe_provider.resume_subscription(sub_id, idempotency_key="resume-nothing")


async def test_usage_is_a_meter_event(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    metered = plan(2, pricing_model=PricingModel.METERED)
    sub_id = await subscribed(stripe_provider, stub, metered, quantity=1)
    customer = stub.find("subscription", sub_id)["customer"]

    await stripe_provider.report_usage(
        UsageReport(
            subscription_id=LOCAL_SUBSCRIPTION,
            provider_subscription_id=sub_id,
            quantity=17,
            idempotency_key="usage-abc",
            recorded_at=clock(),
        )
    )

    [sent] = stub.requests_to("POST", "/v1/billing/meter_events")
    assert sent.headers["Idempotency-Key"] == "usage-abc"
    assert stub.meter_events == [
        {
            "event_name": f"cashier_{metered.id.hex}",
            "payload": {"stripe_customer_id": customer, "value": "17"},
            "identifier": "usage-abc",
            "timestamp": str(clock.unix),
        }
    ]


async def test_usage_of_a_price_without_the_adapters_metadata_reads_the_meter(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    metered = plan(2, pricing_model=PricingModel.METERED)
    sub_id = await subscribed(stripe_provider, stub, metered, quantity=1)
    stub.find("subscription", sub_id)["items"]["data"][0]["price"]["metadata"] = {}  # made in the Dashboard

    await stripe_provider.report_usage(
        UsageReport(LOCAL_SUBSCRIPTION, sub_id, quantity=1, idempotency_key="usage-1", recorded_at=clock())
    )

    assert len(stub.requests_to("GET", r"/v1/billing/meters/mtr_\w+")) == 1
    assert stub.meter_events[0]["event_name"] == f"cashier_{metered.id.hex}"


async def test_usage_needs_a_metered_price(
    stripe_provider: StripeProvider, stub: StripeStub, clock: Clock
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())
    with pytest.raises(InvalidProviderRequestError, match="no metered price"):
        await stripe_provider.report_usage(
            UsageReport(
                LOCAL_SUBSCRIPTION, sub_id, quantity=1, idempotency_key="usage-2", recorded_at=clock()
            )
        )
    assert stub.meter_events == []


async def test_subscription_results_read_the_period_from_the_item(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    sub_id = await subscribed(stripe_provider, stub, plan())
    item = stub.find("subscription", sub_id)["items"]["data"][0]
    item["current_period_end"] += 3600

    result = await stripe_provider.pause_subscription(sub_id, idempotency_key="pause-period")

    assert result.snapshot.current_period_end is not None
    assert int(result.snapshot.current_period_end.timestamp()) == item["current_period_end"]
