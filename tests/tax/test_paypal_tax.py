"""PayPal charges the invoice's gross with tax-exclusive prices, on every database.

The library tells PayPal the VAT it decided as the subscription's inline plan override
(``plan.taxes = {"percentage": "19", "inclusive": false}``); PayPal (the in-process sandbox, which
bills as PayPal documents) adds it to each billing amount. German seller, 29.99 EUR net a month:

=====================================  ======  ========================  =============
Buyer                                  Rate    PayPal's sale (details)   Invoice
=====================================  ======  ========================  =============
German consumer                        19 %    35.69 (29.99 + 5.70)      29.99 + 5.70
French business, VAT number confirmed  0 %     29.99 (29.99 + 0.00)      29.99 + 0.00
=====================================  ======  ========================  =============

Both the first invoice and a renewal charge the invoice's gross to the minor unit.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.db.models import Invoice
from fastapi_cashier.money import Money

from ..http.conftest import Harness, settings_for
from ..http.test_subscriptions import URLS, create_plan
from ..providers.paypal_sandbox import PayPalSandbox
from ..providers.paypal_sandbox.fixtures import PayPalHost, sandbox_provider
from .conftest import VALID_FR, tax_settings
from .test_acceptance import _set_up_buyer

pytestmark = [pytest.mark.anyio, pytest.mark.db]

PRICE = 2999
MONTH = 32 * 24 * 3600

# buyer: (PayPal's taxes percentage, net, tax, gross)
EXCLUSIVE: dict[str, tuple[str, int, int, int]] = {
    "de-consumer": ("19", 2999, 570, 3569),
    "fr-business": ("0", 2999, 0, 2999),
}


@contextlib.asynccontextmanager
async def paypal_with_tax(database_url: str, vies_url: str, **tax: Any) -> AsyncIterator[PayPalHost]:
    """The router at /billing on the PayPal sandbox, with a German seller and ``tax`` on top."""
    sandbox = PayPalSandbox()
    provider = sandbox_provider(sandbox)
    settings = settings_for(
        database_url,
        database={"url": database_url, "create_tables": False},
        default_provider="paypal",
        tax=tax_settings(vies_url, **tax),
    )
    payments = PaymentsRouter(settings, providers=[provider])
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            harness = Harness(app=app, payments=payments, client=client, settings=settings)
            yield PayPalHost(harness, sandbox, provider)


async def synced_plan(host: PayPalHost, unit_amount: int = PRICE) -> dict[str, Any]:
    plan = await create_plan(
        host.harness, name="Pro", pricing_model="flat", unit_amount=unit_amount, currency="EUR"
    )
    synced = await host.client.post(
        "/billing/admin/catalog/sync",
        params={"provider": "paypal"},
        headers=host.harness.auth("root", admin=True),
    )
    assert synced.status_code == 200, synced.text
    return plan


async def subscribe_on_paypal(host: PayPalHost, plan: dict[str, Any], subject: str) -> dict[str, Any]:
    """``subject`` subscribes at PayPal (approves at the sandbox); its subscription at PayPal."""
    before = set(host.sandbox.state.subscriptions)
    created = await host.client.post(
        "/billing/checkout-sessions",
        json={"plan_id": plan["id"], "provider": "paypal", **URLS},
        headers=host.harness.auth(subject),
    )
    assert created.status_code == 201, created.text
    assert (await host.click(created.json()["url"])).status_code == 303
    await deliver_new(host)
    [paypal_id] = set(host.sandbox.state.subscriptions) - before
    paypal_sub: dict[str, Any] = host.sandbox.state.subscriptions[paypal_id]
    return paypal_sub


async def deliver_new(host: PayPalHost) -> None:
    """Deliver the sandbox's events the app has not been sent yet."""
    sent = getattr(host, "_delivered", 0)
    await host.deliver_all(host.sandbox.sent_events[sent:])
    host._delivered = len(host.sandbox.sent_events)  # type: ignore[attr-defined]


async def invoices_of(host: PayPalHost, subject: str) -> list[dict[str, Any]]:
    listing = await host.client.get("/billing/invoices", headers=host.harness.auth(subject))
    assert listing.status_code == 200, listing.text
    items: list[dict[str, Any]] = listing.json()["items"]
    return items


async def charged_at_paypal(host: PayPalHost, invoice: dict[str, Any]) -> int:
    """What PayPal's sale of the local invoice charged, in minor units."""
    async with host.harness.payments.service() as svc:
        row = await svc.session.get(Invoice, uuid.UUID(invoice["id"]))
        assert row is not None
        assert row.provider_invoice_id is not None
        sale_id = row.provider_invoice_id
    sale = host.sandbox.state.sales[sale_id]
    return Money.from_decimal(sale["amount"]["total"], sale["amount"]["currency"]).amount


async def provider_total(host: PayPalHost, invoice: dict[str, Any]) -> object:
    async with host.harness.payments.service() as svc:
        row = await svc.session.get(Invoice, uuid.UUID(invoice["id"]))
        assert row is not None
        return (row.metadata_ or {}).get("provider_total")


async def test_a_german_consumer_and_a_french_business_are_charged_the_invoice_gross(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    async with paypal_with_tax(database_url, vies[1], prices_include_tax=False) as host:
        plan = await synced_plan(host)
        paypal_subs = {}
        for subject, (percentage, *_) in EXCLUSIVE.items():
            await _set_up_buyer(host.harness, subject)
            paypal_sub = await subscribe_on_paypal(host, plan, subject)
            # PayPal was told the decided rate, tax-exclusive.
            assert paypal_sub["plan"] == {"taxes": {"percentage": percentage, "inclusive": False}}
            assert paypal_sub["plan_overridden"] is True
            paypal_subs[subject] = paypal_sub
        await host.sandbox.advance(MONTH)  # every subscription renews once
        await deliver_new(host)
        for subject, (_, net, tax, gross) in EXCLUSIVE.items():
            invoices = await invoices_of(host, subject)
            assert len(invoices) == 2, (subject, invoices)
            for invoice in invoices:
                assert invoice["status"] == "paid"
                assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (net, tax, gross), subject
                assert invoice["amount_paid"] == gross
                assert invoice["lines"][0]["amount"] == PRICE  # the price as configured
                assert await charged_at_paypal(host, invoice) == gross, subject
                assert await provider_total(host, invoice) is None
            payments = await host.client.get("/billing/payments", headers=host.harness.auth(subject))
            assert [p["amount"] for p in payments.json()["items"]] == [gross, gross]
        fr = (await invoices_of(host, "fr-business"))[0]["tax_details"]
        assert fr["treatment"] == "reverse_charge"
        assert fr["buyer"]["tax_id"] == VALID_FR
        de_sale = next(iter(host.sandbox.state.sales.values()))  # the German consumer's first
        assert de_sale["amount"]["details"] == {"subtotal": "29.99", "tax": "5.70"}


async def test_tax_inclusive_prices_are_charged_as_they_are(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    async with paypal_with_tax(database_url, vies[1], prices_include_tax=True) as host:
        plan = await synced_plan(host)
        await _set_up_buyer(host.harness, "de-consumer")
        paypal_sub = await subscribe_on_paypal(host, plan, "de-consumer")
        assert paypal_sub["plan"] == {"taxes": {"percentage": "19", "inclusive": True}}
        [invoice] = await invoices_of(host, "de-consumer")
        assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (2520, 479, PRICE)
        assert await charged_at_paypal(host, invoice) == PRICE
        assert await provider_total(host, invoice) is None


async def test_an_exact_half_cent_may_round_apart_and_paypals_figure_is_kept(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    """29.50 EUR at 19 % is 5.605 EUR of VAT: the library rounds half to even (5.60), the sandbox
    half up as PayPal is taken to (5.61). The invoice keeps PayPal's figure beside its own."""
    async with paypal_with_tax(database_url, vies[1], prices_include_tax=False) as host:
        plan = await synced_plan(host, unit_amount=2950)
        await _set_up_buyer(host.harness, "de-consumer")
        await subscribe_on_paypal(host, plan, "de-consumer")
        [invoice] = await invoices_of(host, "de-consumer")
        assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (2950, 560, 3510)
        assert await charged_at_paypal(host, invoice) == 3511
        assert invoice["amount_paid"] == 3511
        assert await provider_total(host, invoice) == 3511


async def test_new_terms_patch_the_rate_at_paypal_and_the_next_renewal_charges_it(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    """A German consumer who becomes a French business with a confirmed VAT number: the library
    patches the subscription's taxes at PayPal (no approval needed) and the renewal is net."""
    async with paypal_with_tax(database_url, vies[1], prices_include_tax=False) as host:
        plan = await synced_plan(host)
        await _set_up_buyer(host.harness, "de-consumer")
        paypal_sub = await subscribe_on_paypal(host, plan, "de-consumer")
        calls = len(host.sandbox.state.calls)
        moved = await host.client.put(
            "/billing/me/billing-profile",
            json={"legal_name": "Exemple SAS", "city": "Paris", "country": "FR", "tax_id": VALID_FR},
            headers=host.harness.auth("de-consumer"),
        )
        assert moved.status_code == 200, moved.text
        patches = [call for call in host.sandbox.state.calls[calls:] if call[0] == "PATCH"]
        assert [path for _, path, _ in patches] == [f"/v1/billing/subscriptions/{paypal_sub['id']}"]
        assert paypal_sub["plan"]["taxes"] == {"percentage": "0", "inclusive": False}
        assert paypal_sub["status"] == "ACTIVE"  # no approval was needed
        await deliver_new(host)  # PayPal's BILLING.SUBSCRIPTION.UPDATED changes nothing locally
        [local] = (
            await host.client.get("/billing/subscriptions", headers=host.harness.auth("de-consumer"))
        ).json()["items"]
        assert (local["status"], local["pending_change"]) == ("active", None)
        await host.sandbox.advance(MONTH)
        await deliver_new(host)
        first, renewal = sorted(await invoices_of(host, "de-consumer"), key=lambda i: i["number"])
        assert (first["total"], await charged_at_paypal(host, first)) == (3569, 3569)
        assert (renewal["subtotal"], renewal["tax"], renewal["total"]) == (2999, 0, 2999)
        assert await charged_at_paypal(host, renewal) == 2999
        assert renewal["tax_details"]["treatment"] == "reverse_charge"


async def test_a_plan_change_revises_with_the_new_plans_tax(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    """A revise does not carry PayPal's earlier override forward: the library sends the tax again,
    and once the subscriber approves, renewals of the new plan charge its gross."""
    async with paypal_with_tax(database_url, vies[1], prices_include_tax=False) as host:
        plan = await synced_plan(host)
        bigger = await create_plan(
            host.harness,
            product_id=plan["product_id"],
            name="Pro Plus",
            pricing_model="flat",
            unit_amount=4999,
            currency="EUR",
        )
        synced = await host.client.post(
            "/billing/admin/catalog/sync",
            params={"provider": "paypal"},
            headers=host.harness.auth("root", admin=True),
        )
        assert synced.status_code == 200, synced.text
        await _set_up_buyer(host.harness, "de-consumer")
        paypal_sub = await subscribe_on_paypal(host, plan, "de-consumer")
        [local] = (
            await host.client.get("/billing/subscriptions", headers=host.harness.auth("de-consumer"))
        ).json()["items"]
        changed = await host.client.patch(
            f"/billing/subscriptions/{local['id']}",
            json={"plan_id": bigger["id"], "proration": "none"},
            headers=host.harness.auth("de-consumer"),
        )
        assert changed.status_code == 200, changed.text
        revision = paypal_sub["_pending_revision"]
        assert revision["plan"] == {"taxes": {"percentage": "19", "inclusive": False}}
        approval = changed.json()["pending_change"]["approval_url"]
        assert approval
        assert (await host.click(approval)).status_code == 303
        await deliver_new(host)
        assert paypal_sub["plan"]["taxes"] == {"percentage": "19", "inclusive": False}
        await host.sandbox.advance(MONTH)
        await deliver_new(host)
        renewal = max(await invoices_of(host, "de-consumer"), key=lambda i: i["number"])
        gross = 4999 + int((Decimal(4999) * Decimal("0.19")).quantize(Decimal(1)))
        assert (renewal["subtotal"], renewal["total"]) == (4999, gross)
        assert await charged_at_paypal(host, renewal) == gross


async def test_a_one_off_order_is_for_the_gross_and_invoiced_as_charged(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    """A one-off checkout carries its tax already: PayPal's order is for the gross (no items, so
    Orders v2 needs no breakdown), and the numbered invoice is of what was captured."""
    async with paypal_with_tax(database_url, vies[1], prices_include_tax=False) as host:
        await _set_up_buyer(host.harness, "de-consumer")
        created = await host.client.post(
            "/billing/checkout-sessions",
            json={
                "amount": 1000,
                "currency": "EUR",
                "description": "Concert ticket",
                "provider": "paypal",
                **URLS,
            },
            headers=host.harness.auth("de-consumer"),
        )
        assert created.status_code == 201, created.text
        session = created.json()
        assert (session["amount"], session["tax"]["tax"]) == (1190, 190)
        [order] = host.sandbox.state.orders.values()
        [unit] = order["purchase_units"]
        assert unit["amount"] == {"currency_code": "EUR", "value": "11.90"}
        approved = await host.click(session["url"])
        back = httpx.URL(approved.headers["location"])
        returned = await host.client.get(f"{back.path}?{back.query.decode()}")
        assert returned.status_code == 303, returned.text
        await deliver_new(host)
        [invoice] = await invoices_of(host, "de-consumer")
        assert (invoice["subtotal"], invoice["tax"], invoice["total"], invoice["amount_paid"]) == (
            1000,
            190,
            1190,
            1190,
        )
        [capture] = host.sandbox.state.captures.values()
        assert capture["amount"] == {"currency_code": "EUR", "value": "11.90"}
