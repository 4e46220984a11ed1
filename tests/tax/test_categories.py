"""Reduced rates by product tax category: the dated data, the rules, the catalog field, the bill.

Worked examples (rates of the package's ``ebooks`` data):

=============================  ==========  =======  =========================================
Sale of an e-book              Day         Rate     9.99 EUR net (tax-exclusive)
=============================  ==========  =======  =========================================
German consumer (domestic)     2026-12-06  7 %      0.6993 -> 0.70 VAT, 10.69 EUR charged
German consumer                2020-08-01  5 %      the 2020 second-half reduction
French consumer (OSS)          2026-12-06  5.5 %    0.54945 -> 0.55 VAT, 10.54 EUR charged
Finnish consumer               2024-12-31  10 %
Finnish consumer               2025-01-01  14 %
Danish consumer                2026-12-06  25 %     no reduced rate: the standard rate
French business, VAT verified  2026-12-06  0 %      reverse charge, whatever the category
=============================  ==========  =======  =========================================
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import Product
from fastapi_cashier.statuses import TaxIdStatus
from fastapi_cashier.tax import (
    EBOOKS,
    EU_MEMBER_STATES,
    REDUCED_RATES,
    TAX_CATEGORIES,
    DatedRate,
    TaxBuyer,
    TaxRateTable,
    TaxTreatment,
    decide_tax,
    split_tax,
)

from ..http.conftest import Harness
from ..http.test_subscriptions import subscribe
from .conftest import UNCONFIRMED_FR, running

DAY = date(2026, 12, 6)


@pytest.mark.parametrize(
    ("country", "day", "rate"),
    [
        ("DE", DAY, "7"),
        ("DE", date(2020, 8, 1), "5"),
        ("DE", date(2021, 1, 1), "7"),
        ("FR", DAY, "5.5"),
        ("FI", date(2024, 12, 31), "10"),
        ("FI", date(2025, 1, 1), "14"),
        ("ES", date(2020, 4, 22), "21"),
        ("ES", date(2020, 4, 23), "4"),
        ("LU", DAY, "3"),
        ("DK", DAY, "25"),
    ],
)
def test_ebooks_rates_are_dated(country: str, day: date, rate: str) -> None:
    assert TaxRateTable().rate(country, day, EBOOKS) == Decimal(rate)


def test_the_reduced_data_is_well_formed() -> None:
    assert {EBOOKS} == TAX_CATEGORIES
    for category, countries in REDUCED_RATES.items():
        for country, history in countries.items():
            assert country in EU_MEMBER_STATES, (category, country)
            days = [entry.valid_from for entry in history]
            assert days == sorted(days)
            assert days[0] <= date(2020, 1, 1)
            standard = TaxRateTable().rate(country, DAY)
            assert Decimal(0) <= TaxRateTable().rate(country, DAY, category) <= standard


def test_the_rules_use_the_category_only_where_vat_is_due() -> None:
    consumer_de = decide_tax("DE", TaxBuyer(country="DE"), DAY, category=EBOOKS)
    assert (consumer_de.treatment, consumer_de.rate) == (TaxTreatment.DOMESTIC, Decimal(7))
    consumer_fr = decide_tax("DE", TaxBuyer(country="FR"), DAY, category=EBOOKS)
    assert (consumer_fr.treatment, consumer_fr.rate, consumer_fr.country) == (
        TaxTreatment.EU_CONSUMER,
        Decimal("5.5"),
        "FR",
    )
    business = TaxBuyer(country="FR", tax_id="FR40303265045", tax_id_status=TaxIdStatus.VALID)
    assert decide_tax("DE", business, DAY, category=EBOOKS).rate == 0
    assert decide_tax("DE", TaxBuyer(country="US"), DAY, category=EBOOKS).rate == 0
    # Worked figures of the module's table.
    assert split_tax(999, Decimal(7), prices_include_tax=False).gross == 1069
    assert split_tax(999, Decimal("5.5"), prices_include_tax=False).gross == 1054


def test_a_host_overrides_or_adds_a_countrys_reduced_rate() -> None:
    table = TaxRateTable().with_overrides({EBOOKS: {"DK": (DatedRate(date.min, Decimal(0)),)}})
    assert table.rate("DK", DAY, EBOOKS) == 0
    assert table.rate("DE", DAY, EBOOKS) == 7  # the package's data stays
    assert TaxRateTable().rate("DK", DAY, EBOOKS) == 25  # the default table is untouched


@pytest.mark.anyio
@pytest.mark.db
async def test_the_catalog_takes_known_categories_and_refuses_others(exclusive_harness: Harness) -> None:
    admin = exclusive_harness.auth("root", admin=True)
    client = exclusive_harness.client
    created = await client.post(
        "/billing/admin/products", json={"name": "Novel", "tax_category": "ebooks"}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["tax_category"] == "ebooks"
    for bad in ("vinyl", "EBOOKS", "", 7):
        refused = await client.post(
            "/billing/admin/products", json={"name": f"Refused {bad!r}", "tax_category": bad}, headers=admin
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    unknown = await client.post(
        "/billing/admin/products", json={"name": "Record", "tax_category": "vinyl"}, headers=admin
    )
    assert "ebooks" in unknown.json()["detail"]
    patched = await client.patch(
        f"/billing/admin/products/{created.json()['id']}", json={"tax_category": "vinyl"}, headers=admin
    )
    assert patched.status_code == 422
    cleared = await client.patch(
        f"/billing/admin/products/{created.json()['id']}", json={"tax_category": None}, headers=admin
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["tax_category"] is None
    async with exclusive_harness.payments.service() as svc:
        names = (await svc.session.scalars(sa.select(Product.name))).all()
    assert names == ["Novel"]  # nothing refused was written


@pytest.mark.anyio
@pytest.mark.db
async def test_a_host_category_is_known(engine: Any, database_url: str, vies: tuple[Any, str]) -> None:
    async with running(database_url, vies[1], reduced_rates={"newspapers": {"DE": "7"}}) as harness:
        created = await harness.client.post(
            "/billing/admin/products",
            json={"name": "Daily", "tax_category": "newspapers"},
            headers=harness.auth("root", admin=True),
        )
        assert created.status_code == 201, created.text


async def _ebook_plan(harness: Harness) -> dict[str, Any]:
    admin = harness.auth("root", admin=True)
    product = await harness.client.post(
        "/billing/admin/products", json={"name": "E-book club", "tax_category": "ebooks"}, headers=admin
    )
    assert product.status_code == 201, product.text
    plan = await harness.client.post(
        "/billing/admin/plans",
        json={
            "product_id": product.json()["id"],
            "name": "Monthly e-book",
            "pricing_model": "flat",
            "unit_amount": 999,
            "currency": "EUR",
            "interval": "month",
        },
        headers=admin,
    )
    assert plan.status_code == 201, plan.text
    result: dict[str, Any] = plan.json()
    return result


@pytest.mark.anyio
@pytest.mark.db
@pytest.mark.parametrize(
    ("profile", "rate", "tax", "gross"),
    [
        ({"country": "DE"}, "7", 70, 1069),
        ({"country": "FR", "tax_id": UNCONFIRMED_FR}, "5.5", 55, 1054),
        ({"country": "US"}, "0", 0, 999),
    ],
    ids=["de-consumer", "fr-unconfirmed", "us-customer"],
)
async def test_an_ebook_subscription_is_billed_and_charged_at_the_reduced_rate(
    exclusive_harness: Harness, profile: dict[str, str], rate: str, tax: int, gross: int
) -> None:
    harness = exclusive_harness
    plan = await _ebook_plan(harness)
    saved = await harness.client.put(
        "/billing/me/billing-profile", json=profile, headers=harness.auth("reader")
    )
    assert saved.status_code == 200, saved.text
    created = await harness.client.post(
        "/billing/checkout-sessions",
        json={
            "plan_id": plan["id"],
            "success_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/no",
        },
        headers=harness.auth("reader"),
    )
    assert created.json()["tax"]["rate"] == rate
    assert (created.json()["tax"]["tax"], created.json()["tax"]["gross"]) == (tax, gross)
    await subscribe(harness, plan["id"], subject="reader")
    await harness.fake.advance(days=32)
    listing = await harness.client.get("/billing/invoices", headers=harness.auth("reader"))
    invoices = listing.json()["items"]
    assert len(invoices) == 2
    for invoice in invoices:
        assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["amount_paid"]) == (
            999,
            tax,
            gross,
            gross,
        )
        assert invoice["tax_details"]["lines"] == [{"rate": rate, "net": 999, "tax": tax, "gross": gross}]
    charged = sorted(p.amount.amount for p in harness.fake.payments.values())
    assert charged == [gross, gross]


@pytest.mark.anyio
@pytest.mark.db
async def test_a_plan_change_across_categories_taxes_each_line_at_its_rate(
    exclusive_harness: Harness,
) -> None:
    """From an e-book plan (7 %) to a standard one (19 %), invoiced at once: the credit at 7 %,
    the charge at 19 %, one tax line per rate; the provider charges the same gross."""
    harness = exclusive_harness
    ebook = await _ebook_plan(harness)
    admin = harness.auth("root", admin=True)
    product = await harness.client.post("/billing/admin/products", json={"name": "Software"}, headers=admin)
    standard = await harness.client.post(
        "/billing/admin/plans",
        json={
            "product_id": product.json()["id"],
            "name": "Software",
            "pricing_model": "flat",
            "unit_amount": 3000,
            "currency": "EUR",
            "interval": "month",
        },
        headers=admin,
    )
    await harness.client.put(
        "/billing/me/billing-profile", json={"country": "DE"}, headers=harness.auth("reader")
    )
    subscription = await subscribe(harness, ebook["id"], subject="reader")
    await harness.fake.advance(days=10)
    changed = await harness.client.patch(
        f"/billing/subscriptions/{subscription['id']}",
        json={"plan_id": standard.json()["id"], "proration": "always_invoice"},
        headers=harness.auth("reader"),
    )
    assert changed.status_code == 200, changed.text
    newest = (await harness.client.get("/billing/invoices", headers=harness.auth("reader"))).json()["items"][
        0
    ]
    credit = sum(line["amount"] for line in newest["lines"] if line["amount"] < 0)
    charge = sum(line["amount"] for line in newest["lines"] if line["amount"] > 0)
    assert credit < 0 < charge
    lines = newest["tax_details"]["lines"]
    assert [line["rate"] for line in lines] == ["19", "7"]
    assert [line["net"] for line in lines] == [charge, credit]
    taxes = [
        split_tax(charge, Decimal(19), prices_include_tax=False).tax,
        split_tax(credit, Decimal(7), prices_include_tax=False).tax,
    ]
    assert [line["tax"] for line in lines] == taxes
    assert newest["total"] == charge + credit + sum(taxes)
    provider_invoice = next(i for i in harness.fake.invoices.values() if len(i.lines) == 2)
    assert provider_invoice.total.amount == newest["total"] == newest["amount_paid"]
