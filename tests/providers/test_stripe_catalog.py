"""Catalog sync: pricing models as Stripe Prices, new Prices for new pricing, Meters for metered plans."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from fastapi_cashier.errors import InvalidProviderRequestError
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import TierRef
from fastapi_cashier.providers.stripe import StripeProvider
from fastapi_cashier.providers.stripe._catalog import price_params
from fastapi_cashier.statuses import BillingInterval, PricingModel

from .contract import plan, synced
from .stripe_stub import StripeStub

pytestmark = pytest.mark.anyio

TIERS = (TierRef(up_to=10, unit_amount=500, flat_amount=1000), TierRef(up_to=None, unit_amount=300))
MONTHLY: dict[str, Any] = {"interval": "month", "interval_count": 1}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"pricing_model": PricingModel.PER_UNIT},
            {"unit_amount": 1500, "recurring": MONTHLY},
        ),
        (
            # A flat price does not grow with the quantity: one open volume tier with a flat fee.
            {"pricing_model": PricingModel.FLAT},
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [{"up_to": "inf", "unit_amount": 0, "flat_amount": 1500}],
                "recurring": MONTHLY,
            },
        ),
        (
            {"pricing_model": PricingModel.FLAT, "interval": BillingInterval.ONE_TIME},
            {"unit_amount": 1500},
        ),
        (
            {"pricing_model": PricingModel.FREE, "unit_amount": Money(0, "EUR")},
            {"unit_amount": 0, "recurring": MONTHLY},
        ),
        (
            {"pricing_model": PricingModel.TIERED_GRADUATED, "unit_amount": Money(0, "EUR"), "tiers": TIERS},
            {
                "billing_scheme": "tiered",
                "tiers_mode": "graduated",
                "tiers": [
                    {"up_to": 10, "unit_amount": 500, "flat_amount": 1000},
                    {"up_to": "inf", "unit_amount": 300},
                ],
                "recurring": MONTHLY,
            },
        ),
        (
            {
                "pricing_model": PricingModel.TIERED_VOLUME,
                "unit_amount": Money(0, "EUR"),
                "tiers": TIERS,
                "interval": BillingInterval.YEAR,
                "interval_count": 2,
            },
            {
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [
                    {"up_to": 10, "unit_amount": 500, "flat_amount": 1000},
                    {"up_to": "inf", "unit_amount": 300},
                ],
                "recurring": {"interval": "year", "interval_count": 2},
            },
        ),
        (
            {"pricing_model": PricingModel.METERED, "unit_amount": Money(2, "EUR")},
            {"unit_amount": 2, "recurring": {**MONTHLY, "usage_type": "metered"}},
        ),
        (
            {"pricing_model": PricingModel.METERED, "unit_amount": Money(0, "EUR"), "tiers": TIERS},
            {
                "billing_scheme": "tiered",
                "tiers_mode": "graduated",
                "tiers": [
                    {"up_to": 10, "unit_amount": 500, "flat_amount": 1000},
                    {"up_to": "inf", "unit_amount": 300},
                ],
                "recurring": {**MONTHLY, "usage_type": "metered"},
            },
        ),
    ],
    ids=["per_unit", "flat", "flat one-time", "free", "graduated", "volume", "metered", "metered tiers"],
)
def test_pricing_models_become_stripe_prices(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    assert price_params(plan(**overrides)) == {"currency": "eur", "nickname": "Pro monthly", **expected}


@pytest.mark.parametrize("model", [PricingModel.TIERED_VOLUME, PricingModel.METERED])
def test_a_tiered_or_metered_plan_must_recur(model: PricingModel) -> None:
    one_time = plan(0, pricing_model=model, tiers=TIERS, interval=BillingInterval.ONE_TIME)
    with pytest.raises(InvalidProviderRequestError, match="does not recur"):
        price_params(one_time)


async def test_the_first_sync_makes_a_product_and_a_price(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    pro = await synced(stripe_provider, plan())

    [product_request] = stub.requests_to("POST", "/v1/products")
    [price_request] = stub.requests_to("POST", "/v1/prices")
    product = stub.find("product", f"cashier_plan_{pro.id.hex}")
    price = stub.find("price", pro.provider_price_id or "")
    assert product_request.headers["Idempotency-Key"] == f"product-{pro.id}"
    assert product["name"] == "Pro \N{EN DASH} Pro monthly"
    assert product["metadata"] == {"plan_id": str(pro.id)}
    assert price_request.headers["Idempotency-Key"].startswith(f"price-{pro.id}-")
    assert price["product"] == product["id"]
    assert price["metadata"]["plan_id"] == str(pro.id)
    assert price["lookup_key"] == f"cashier_{pro.id.hex}"
    assert price_request.params["transfer_lookup_key"] == "true"


async def test_an_unchanged_plan_keeps_its_price(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    pro = await synced(stripe_provider, plan())
    again = await synced(stripe_provider, pro)

    assert again.provider_price_id == pro.provider_price_id
    assert len(stub.requests_to("POST", "/v1/prices")) == 1


async def test_a_changed_price_is_a_new_price_and_the_old_one_is_archived(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    pro = await synced(stripe_provider, plan(1500))
    dearer = await synced(stripe_provider, dataclasses.replace(pro, unit_amount=Money(1900, "EUR")))

    old, new = (
        stub.find("price", pro.provider_price_id or ""),
        stub.find("price", dearer.provider_price_id or ""),
    )
    assert (old["active"], new["active"]) == (False, True)
    assert (old["unit_amount"], new["unit_amount"]) == (1500, 1900)
    assert new["product"] == old["product"]
    # The lookup key moved with the plan to its current price.
    assert (old["lookup_key"], new["lookup_key"]) == (None, f"cashier_{pro.id.hex}")
    [archive] = stub.requests_to("POST", f"/v1/prices/{pro.provider_price_id}")
    assert archive.params == {"active": "false"}


async def test_going_back_to_an_archived_pricing_reactivates_its_price(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    pro = await synced(stripe_provider, plan(1500))
    await synced(stripe_provider, dataclasses.replace(pro, unit_amount=Money(1900, "EUR")))
    stub.find("price", pro.provider_price_id or "")["active"] = False

    back = await synced(stripe_provider, pro)

    assert back.provider_price_id == pro.provider_price_id
    assert stub.find("price", pro.provider_price_id or "")["active"] is True


async def test_a_price_gone_from_stripe_is_made_again(
    stripe_provider: StripeProvider, stub: StripeStub
) -> None:
    recreated = await synced(stripe_provider, plan(provider_price_id="price_from_another_account"))

    assert recreated.provider_price_id != "price_from_another_account"
    assert stub.find("price", recreated.provider_price_id or "")["unit_amount"] == 1500


async def test_a_renamed_plan_renames_its_product(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    pro = await synced(stripe_provider, plan())
    await stripe_provider.sync_catalog([dataclasses.replace(pro, name="Pro plus", provider_price_id=None)])

    assert stub.find("product", f"cashier_plan_{pro.id.hex}")["name"] == "Pro \N{EN DASH} Pro plus"


async def test_a_metered_plan_gets_one_meter(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    metered = await synced(stripe_provider, plan(2, pricing_model=PricingModel.METERED))
    dearer = await synced(stripe_provider, dataclasses.replace(metered, unit_amount=Money(3, "EUR")))

    [meter_request] = stub.requests_to("POST", "/v1/billing/meters")
    meter = next(o for o in stub.objects.values() if o["object"] == "billing.meter")
    assert meter_request.params == {
        "display_name": "Pro monthly",
        "event_name": f"cashier_{metered.id.hex}",
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
        "value_settings": {"event_payload_key": "value"},
    }
    for price_id in (metered.provider_price_id, dearer.provider_price_id):
        price = stub.find("price", price_id or "")
        assert price["recurring"]["meter"] == meter["id"]
        assert price["metadata"]["cashier_meter_event"] == f"cashier_{metered.id.hex}"


async def test_a_plan_stripe_refuses_is_left_out_and_the_others_are_synced(
    stripe_provider: StripeProvider, stub: StripeStub, caplog: pytest.LogCaptureFixture
) -> None:
    good, odd = plan(), plan(id=uuid.UUID(int=43), name="Odd", unit_amount=Money(1500, "CHF"))
    stub.refused_currencies.add("chf")

    synced_ids = await stripe_provider.sync_catalog([odd, good])

    assert set(synced_ids) == {good.id}
    assert "currency chf is not supported" in caplog.text
