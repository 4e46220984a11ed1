"""With ``{year}`` in the invoice number format, each year is numbered from 1, gap-free."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from fastapi_cashier.billing.invoices import INVOICE_NUMBER_SEQUENCE, _utc_year, invoice_number_sequence
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import InvoiceSnapshot, ProviderEvent
from fastapi_cashier.statuses import InvoiceStatus

from ..http.test_subscriptions import create_plan, invoices, subscribe
from .conftest import running
from .test_acceptance import PRICE, _set_up_buyer

pytestmark = pytest.mark.anyio

YEARS = (2031, 2032)
PER_YEAR = 6


@pytest.mark.parametrize(
    ("pattern", "sequence"),
    [
        ("INV-{number:06d}", INVOICE_NUMBER_SEQUENCE),
        ("{year}/{number:04d}", f"{INVOICE_NUMBER_SEQUENCE}-2031"),
        ("R{year:04d}-{number}", f"{INVOICE_NUMBER_SEQUENCE}-2031"),
        # An escaped brace is text, not the year: the count never restarts.
        ("{{year}}-{number}", INVOICE_NUMBER_SEQUENCE),
    ],
)
def test_only_a_format_showing_the_year_counts_per_year(pattern: str, sequence: str) -> None:
    assert invoice_number_sequence(pattern, 2031) == sequence


async def test_each_year_restarts_at_one_without_gaps_under_concurrency(
    engine: Any, database_url: str, vies: tuple[Any, str]
) -> None:
    async with running(
        database_url, vies[1], prices_include_tax=True, invoice_number_format="{year}/{number:04d}"
    ) as harness:
        plan = await create_plan(harness, name="Pro", pricing_model="flat", unit_amount=PRICE)
        await _set_up_buyer(harness, "us-customer")
        await subscribe(harness, plan["id"], subject="us-customer")
        subscription = next(iter(harness.fake.subscriptions.values()))

        async def apply(year: int, index: int) -> None:
            event = ProviderEvent(
                provider="fake",
                id=f"evt_{year}_{index}",
                type="invoice.paid",
                occurred_at=datetime(year, 3, 1, tzinfo=UTC) + timedelta(seconds=index),
                object_kind="invoice",
                object_id=f"in_{year}_{index}",
                snapshot=InvoiceSnapshot(
                    provider_invoice_id=f"in_{year}_{index}",
                    status=InvoiceStatus.PAID,
                    total=Money(PRICE, "EUR"),
                    amount_paid=PRICE,
                    provider_subscription_id=subscription.id,
                    lines=({"description": "Pro", "quantity": 1, "unit_amount": PRICE, "amount": PRICE},),
                ),
            )
            async with harness.payments.service() as svc:
                outcome = await svc.events.apply(event)
                assert outcome.status == "processed", outcome.reason

        async with anyio.create_task_group() as group:
            for index in range(PER_YEAR):
                for year in YEARS:
                    group.start_soon(apply, year, index)

        numbers = [invoice["number"] for invoice in await invoices(harness, "us-customer")]
        first_year = min(number[:4] for number in numbers)
        assert int(first_year) < YEARS[0]
        assert sorted(numbers) == [f"{first_year}/0001"] + [
            f"{year}/{count:04d}" for year in YEARS for count in range(1, PER_YEAR + 1)
        ]


def test_the_year_is_taken_in_utc() -> None:
    new_year_in_berlin = datetime(2032, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert _utc_year(new_year_in_berlin) == 2031
    assert _utc_year(datetime(2032, 1, 1, 0, 30)) == 2032
