"""The tax share of refunds: exact in minor units, never more than the payment's tax in sum, and a
full refund returns exactly that tax.

Rule (:func:`fastapi_cashier.tax.refund_tax`): after each refund, the refunds of a payment hold
``round_half_even(tax x refunded / paid)`` of its tax; a refund takes the difference. Worked
example, 11.90 EUR paid with 1.90 EUR VAT (10.00 net at 19 %):

=========  ==============  =======================================  ==========  ====
Refund     Refunded so far  Share of the tax                         Refund tax  Net
=========  ==============  =======================================  ==========  ====
1.00       1.00            190 x 100 / 1190 = 15.97 -> 16            0.16        0.84
5.95       6.95            190 x 695 / 1190 = 110.97 -> 111          0.95        5.00
4.95       11.90           190                                       0.79        4.16
=========  ==============  =======================================  ==========  ====
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import anyio
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from fastapi_cashier.db.models import Refund
from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import RefundRequest
from fastapi_cashier.tax import refund_tax, split_tax

from ..http.conftest import Harness
from .test_acceptance import _set_up_buyer


def test_the_worked_example() -> None:
    first = refund_tax(paid=1190, tax=190, refunded_before=0, amount=100, tax_refunded_before=0)
    second = refund_tax(paid=1190, tax=190, refunded_before=100, amount=595, tax_refunded_before=first)
    third = refund_tax(
        paid=1190, tax=190, refunded_before=695, amount=495, tax_refunded_before=first + second
    )
    assert (first, second, third) == (16, 95, 79)


def test_half_a_minor_unit_rounds_to_even() -> None:
    # 3 x 50 / 100 = 1.5 -> 2; 1 x 50 / 100 = 0.5 -> 0.
    assert refund_tax(paid=100, tax=3, refunded_before=0, amount=50, tax_refunded_before=0) == 2
    assert refund_tax(paid=100, tax=1, refunded_before=0, amount=50, tax_refunded_before=0) == 0


def test_bad_figures_are_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        refund_tax(paid=100, tax=10, refunded_before=60, amount=50, tax_refunded_before=0)
    with pytest.raises(ValueError, match="amount"):
        refund_tax(paid=100, tax=10, refunded_before=0, amount=1.5, tax_refunded_before=0)  # type: ignore[arg-type]


@given(
    paid=st.integers(min_value=1, max_value=10**9),
    rate=st.sampled_from(["0", "3", "5.5", "7", "19", "20", "25.5", "27"]),
    cuts=st.lists(st.floats(min_value=0, max_value=1, allow_nan=False), max_size=8),
    failures=st.lists(st.booleans(), max_size=9),
)
def test_refunds_never_return_more_tax_and_a_full_refund_returns_all(
    paid: int, rate: str, cuts: list[float], failures: list[bool]
) -> None:
    """Any sequence of partial refunds (some failing and giving their amount back), then the rest."""
    tax = split_tax(paid, Decimal(rate), prices_include_tax=True).tax
    refunded, taken = 0, 0
    for index, cut in enumerate([*cuts, 1.0]):
        amount = max(1, int((paid - refunded) * cut)) if cut < 1 else paid - refunded
        if amount <= 0 or refunded + amount > paid:
            continue
        share = refund_tax(
            paid=paid, tax=tax, refunded_before=refunded, amount=amount, tax_refunded_before=taken
        )
        assert 0 <= share <= amount
        failed = index < len(failures) and failures[index] and cut < 1
        if not failed:
            refunded, taken = refunded + amount, taken + share
        assert taken <= tax
    assert refunded == paid
    assert taken == tax


@pytest.mark.anyio
@pytest.mark.db
async def test_refunds_of_a_taxed_payment_carry_their_tax(exclusive_harness: Harness) -> None:
    harness = exclusive_harness
    await _set_up_buyer(harness, "de-consumer")
    paid = await harness.pay_one_off("de-consumer", amount=1000)
    payment_id = paid["session"]["payment_id"]
    assert paid["session"]["amount"] == 1190
    admin = harness.auth("root", admin=True)
    url = f"/billing/admin/payments/{payment_id}/refunds"
    figures = []
    for body in ({"amount": 100}, {"amount": 595}, {}):
        refund = await harness.client.post(url, json=body, headers=admin)
        assert refund.status_code == 201, refund.text
        out = refund.json()
        assert out["status"] == "succeeded"
        assert out["net_amount"] + out["tax_amount"] == out["amount"]
        figures.append((out["amount"], out["net_amount"], out["tax_amount"]))
    assert figures == [(100, 84, 16), (595, 500, 95), (495, 416, 79)]
    assert sum(tax for _, _, tax in figures) == 190


@pytest.mark.anyio
@pytest.mark.db
async def test_a_full_refund_returns_exactly_the_invoice_tax(tax_harness: Harness) -> None:
    await _set_up_buyer(tax_harness, "fr-unconfirmed")
    paid = await tax_harness.pay_one_off("fr-unconfirmed", amount=2999)
    refund = await tax_harness.client.post(
        f"/billing/admin/payments/{paid['session']['payment_id']}/refunds",
        json={},
        headers=tax_harness.auth("root", admin=True),
    )
    assert refund.status_code == 201, refund.text
    # 29.99 gross at 20 %: 24.99 net, 5.00 VAT (see the acceptance table).
    assert (refund.json()["net_amount"], refund.json()["tax_amount"]) == (2499, 500)


@pytest.mark.anyio
@pytest.mark.db
async def test_an_exports_refund_carries_zero_tax(tax_harness: Harness) -> None:
    await _set_up_buyer(tax_harness, "us-customer")
    paid = await tax_harness.pay_one_off("us-customer", amount=500)
    refund = await tax_harness.client.post(
        f"/billing/admin/payments/{paid['session']['payment_id']}/refunds",
        json={"amount": 200},
        headers=tax_harness.auth("root", admin=True),
    )
    # An export: the invoice carries 0 VAT, so the refund's tax is 0 (not unknown).
    assert (refund.json()["net_amount"], refund.json()["tax_amount"]) == (200, 0)


@pytest.mark.anyio
@pytest.mark.db
async def test_concurrent_partial_refunds_share_the_tax_exactly(exclusive_harness: Harness) -> None:
    """Twelve refunds at once (10 x 1.00 and 2 x 0.95) of 11.90 with 1.90 VAT: each decides its
    share under the payment's lock, so together they return exactly 1.90, in whatever order."""
    harness = exclusive_harness
    await _set_up_buyer(harness, "de-consumer")
    paid = await harness.pay_one_off("de-consumer", amount=1000)
    url = f"/billing/admin/payments/{paid['session']['payment_id']}/refunds"
    admin = harness.auth("root", admin=True)
    answers: list[dict[str, int]] = []

    async def refund(amount: int) -> None:
        response = await harness.client.post(url, json={"amount": amount}, headers=admin)
        assert response.status_code == 201, response.text
        answers.append(response.json())

    async with anyio.create_task_group() as group:
        for amount in [100] * 10 + [95, 95]:
            group.start_soon(refund, amount)
    assert len(answers) == 12
    assert all(0 <= answer["tax_amount"] <= answer["amount"] for answer in answers)
    assert sum(answer["tax_amount"] for answer in answers) == 190


@pytest.mark.anyio
@pytest.mark.db
async def test_a_refund_made_at_the_provider_takes_its_share_too(exclusive_harness: Harness) -> None:
    harness = exclusive_harness
    await _set_up_buyer(harness, "de-consumer")
    paid = await harness.pay_one_off("de-consumer", amount=1000)
    [provider_payment_id] = harness.fake.payments
    # Refunded in the provider's dashboard: its refund event is recorded as an outside refund.
    await harness.fake.refund(
        RefundRequest(
            refund_id=uuid.uuid4(),
            idempotency_key="dashboard-1",
            provider_payment_id=provider_payment_id,
            amount=Money(100, "EUR"),
        )
    )
    rest = await harness.client.post(
        f"/billing/admin/payments/{paid['session']['payment_id']}/refunds",
        json={},
        headers=harness.auth("root", admin=True),
    )
    assert rest.status_code == 201, rest.text
    async with harness.payments.service() as svc:
        refunds = (await svc.session.scalars(sa.select(Refund).order_by(Refund.amount))).all()
    assert [(r.amount, r.tax_amount, r.actor is None) for r in refunds] == [
        (100, 16, True),
        (1090, 174, False),
    ]
