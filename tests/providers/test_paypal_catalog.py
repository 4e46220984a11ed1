"""Catalog sync to PayPal Catalog Products and Billing Plans, on the sandbox."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from fastapi_cashier.errors import UnsupportedCapabilityError, ValidationError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import PlanRef, TierRef
from fastapi_cashier.providers.paypal import PayPalClient
from fastapi_cashier.providers.paypal._catalog import plan_request, product_id, sync_plans
from fastapi_cashier.statuses import BillingInterval, PricingModel

from .paypal_sandbox import PayPalSandbox
from .paypal_spec import assert_matches

pytestmark = pytest.mark.anyio


def plan(model: PricingModel = PricingModel.FLAT, **changes: object) -> PlanRef:
    base = PlanRef(
        id=uuid.uuid4(),
        name="Pro monthly",
        unit_amount=Money(1500, "USD"),
        interval=BillingInterval.MONTH,
        pricing_model=model,
        product_name="Pro",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


TIERS = (TierRef(up_to=5, unit_amount=1000), TierRef(up_to=None, unit_amount=800))


@pytest.mark.parametrize(
    ("ref", "scheme", "quantity_supported"),
    [
        (plan(), {"fixed_price": {"currency_code": "USD", "value": "15.00"}}, False),
        (plan(PricingModel.PER_UNIT), {"fixed_price": {"currency_code": "USD", "value": "15.00"}}, True),
        (
            plan(PricingModel.TIERED_GRADUATED, tiers=TIERS),
            {
                "pricing_model": "TIERED",
                "tiers": [
                    {
                        "starting_quantity": "1",
                        "ending_quantity": "5",
                        "amount": {"currency_code": "USD", "value": "10.00"},
                    },
                    {"starting_quantity": "6", "amount": {"currency_code": "USD", "value": "8.00"}},
                ],
            },
            True,
        ),
        (
            plan(PricingModel.TIERED_VOLUME, tiers=TIERS, unit_amount=Money(0, "JPY")),
            {
                "pricing_model": "VOLUME",
                "tiers": [
                    {
                        "starting_quantity": "1",
                        "ending_quantity": "5",
                        "amount": {"currency_code": "JPY", "value": "1000"},
                    },
                    {"starting_quantity": "6", "amount": {"currency_code": "JPY", "value": "800"}},
                ],
            },
            True,
        ),
    ],
)
async def test_pricing_models_become_plans(
    paypal_sandbox: PayPalSandbox,
    paypal_client: PayPalClient,
    ref: PlanRef,
    scheme: dict[str, object],
    quantity_supported: bool,
) -> None:
    body = plan_request(ref, product_id(ref))
    assert_matches("billing_subscriptions_v1", "plan_request_POST", body)
    synced = await sync_plans(paypal_client, [ref])
    created = paypal_sandbox.state.plans[synced[ref.id]]
    assert created["product_id"] == product_id(ref)
    assert paypal_sandbox.state.products[product_id(ref)]["name"] == "Pro"
    assert created["quantity_supported"] is quantity_supported
    [regular] = created["billing_cycles"]
    assert regular["tenure_type"] == "REGULAR"
    assert regular["frequency"] == {"interval_unit": "MONTH", "interval_count": 1}
    assert {key: value for key, value in regular["pricing_scheme"].items() if key in scheme} == scheme


async def test_a_trial_is_a_free_trial_cycle(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    ref = plan(trial_days=14, interval=BillingInterval.YEAR)
    synced = await sync_plans(paypal_client, [ref])
    trial, regular = paypal_sandbox.state.plans[synced[ref.id]]["billing_cycles"]
    assert trial == {
        "frequency": {"interval_unit": "DAY", "interval_count": 14},
        "tenure_type": "TRIAL",
        "sequence": 1,
        "total_cycles": 1,
    }
    assert (regular["sequence"], regular["frequency"]["interval_unit"]) == (2, "YEAR")


@pytest.mark.parametrize(
    ("ref", "capability"),
    [
        (plan(PricingModel.METERED), "metered_usage"),
        (plan(PricingModel.FREE, unit_amount=Money(0, "USD")), "free"),
        (plan(interval=BillingInterval.ONE_TIME), "one_time"),
        (plan(interval_count=13), "interval_count"),
        (
            plan(PricingModel.TIERED_GRADUATED, tiers=(TierRef(None, 100, flat_amount=500),)),
            "tier_flat_amount",
        ),
        (plan(unit_amount=Money(1500, "KWD")), None),
    ],
)
async def test_what_paypal_cannot_bill_is_refused_before_anything_is_created(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, ref: PlanRef, capability: str | None
) -> None:
    fine = plan()
    with pytest.raises(ValidationError) as caught:
        await sync_plans(paypal_client, [fine, ref])
    if capability is not None:
        assert isinstance(caught.value, UnsupportedCapabilityError)
        assert caught.value.details["capability"] == capability
        assert caught.value.details["plan_id"] == str(ref.id)
    assert paypal_sandbox.state.plans == {}
    assert paypal_sandbox.state.products == {}


async def test_an_unchanged_plan_is_kept_and_a_changed_one_replaced(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    ref = plan(PricingModel.PER_UNIT)
    first = (await sync_plans(paypal_client, [ref]))[ref.id]
    same = replace(ref, provider_price_id=first)
    assert (await sync_plans(paypal_client, [same]))[ref.id] == first
    assert len(paypal_sandbox.state.plans) == 1

    cheaper = replace(same, unit_amount=Money(1200, "USD"))
    second = (await sync_plans(paypal_client, [cheaper]))[ref.id]
    assert second != first
    assert paypal_sandbox.state.plans[first]["status"] == "INACTIVE"
    regular = paypal_sandbox.state.plans[second]["billing_cycles"][0]
    assert regular["pricing_scheme"]["fixed_price"] == {"currency_code": "USD", "value": "12.00"}

    yearly = replace(cheaper, interval=BillingInterval.YEAR, provider_price_id=second)
    third = (await sync_plans(paypal_client, [yearly]))[ref.id]
    assert third not in (first, second)
    assert paypal_sandbox.state.plans[third]["billing_cycles"][0]["frequency"]["interval_unit"] == "YEAR"
    assert len(paypal_sandbox.state.products) == 1
    # Synced again as it is: kept, nothing new.
    assert (await sync_plans(paypal_client, [replace(yearly, provider_price_id=third)]))[ref.id] == third
    assert len(paypal_sandbox.state.plans) == 3


async def test_a_plan_deactivated_at_paypal_is_activated_again_when_it_bills_the_same(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    ref = plan(PricingModel.FLAT)
    first = (await sync_plans(paypal_client, [ref]))[ref.id]
    # Someone deactivated it in PayPal's dashboard.
    await paypal_client.post(
        f"/v1/billing/plans/{first}/deactivate", operation="deactivate in the dashboard", request_id="dash-1"
    )
    assert paypal_sandbox.state.plans[first]["status"] == "INACTIVE"
    again = (await sync_plans(paypal_client, [replace(ref, provider_price_id=first)]))[ref.id]
    assert again == first
    assert paypal_sandbox.state.plans[first]["status"] == "ACTIVE"
    activations = [
        call for call in paypal_sandbox.state.calls if call[1] == f"/v1/billing/plans/{first}/activate"
    ]
    assert activations == [("POST", f"/v1/billing/plans/{first}/activate", f"activate-{first}")]
    assert len(paypal_sandbox.state.plans) == 1
