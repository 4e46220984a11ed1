"""Identifiers compare byte for byte on every database.

MariaDB's default collation takes ``ALICE``, ``Àlice`` and ``alice `` for ``alice`` (case,
accents, trailing spaces); the identifier columns have a binary, no-pad collation there, so each
look-alike is an identity of its own, as on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from fastapi_cashier.db import models as m
from fastapi_cashier.db.model_repositories import (
    CustomerRepository,
    IdempotencyKeyRepository,
    PaymentRepository,
    WebhookEventRepository,
)
from fastapi_cashier.statuses import WebhookEventStatus

from . import factories

pytestmark = pytest.mark.anyio

#: Look-alikes of ``alice`` (the last one in full-width letters).
LOOK_ALIKE_SUBJECTS = ["ALICE", "Àlice", "alice ", "alicé", "\uff21\uff2c\uff29\uff23\uff25"]
#: Look-alikes of ``order-77`` that can travel in an HTTP header (ASCII only).
LOOK_ALIKE_KEYS = ["ORDER-77", "order-77 ", "Order-77", " order-77"]


@pytest.mark.parametrize("look_alike", LOOK_ALIKE_SUBJECTS)
async def test_a_look_alike_subject_is_another_customer(session: AsyncSession, look_alike: str) -> None:
    customers = CustomerRepository(session=session)
    alice = await customers.add(factories.customer(external_id="alice"))
    await session.commit()

    assert await customers.get_by_external_id(look_alike) is None
    other = await customers.add(factories.customer(external_id=look_alike))
    await session.commit()  # no unique violation: it is not alice

    assert (await customers.get_by_external_id(look_alike)).id == other.id  # type: ignore[union-attr]
    assert (await customers.get_by_external_id("alice")).id == alice.id  # type: ignore[union-attr]


@pytest.mark.parametrize("look_alike", [*LOOK_ALIKE_KEYS, "órder-77"])
async def test_a_look_alike_idempotency_key_or_principal_is_another_key(
    session: AsyncSession, look_alike: str
) -> None:
    keys = IdempotencyKeyRepository(session=session)
    stored = m.IdempotencyKey(
        principal="alice",
        key="order-77",
        method="POST",
        path="/checkout-sessions",
        request_fingerprint="f" * 64,
    )
    await keys.add(stored)
    await session.commit()

    assert await keys.find("alice", look_alike) is None
    for subject in LOOK_ALIKE_SUBJECTS:
        assert await keys.find(subject, "order-77") is None
    assert (await keys.find("alice", "order-77")).id == stored.id  # type: ignore[union-attr]


@pytest.mark.parametrize("look_alike", ["EVT_1", "evt_1 ", "évt_1"])
async def test_a_look_alike_webhook_event_id_is_another_event(session: AsyncSession, look_alike: str) -> None:
    events = WebhookEventRepository(session=session)
    for event_id in ("evt_1", look_alike):
        await events.add(
            m.WebhookEvent(
                provider="stripe",
                event_id=event_id,
                type="payment_intent.succeeded",
                raw_body=b"{}",
                status=WebhookEventStatus.PENDING,
            )
        )
        await session.commit()  # the second one is no duplicate of the first

    assert (await events.by_event_id("stripe", look_alike)).event_id == look_alike  # type: ignore[union-attr]
    assert (await events.by_event_id("stripe", "evt_1")).event_id == "evt_1"  # type: ignore[union-attr]


async def test_provider_ids_and_references_match_exactly(session: AsyncSession) -> None:
    customer = await CustomerRepository(session=session).add(factories.customer())
    payments = PaymentRepository(session=session)
    payment = await payments.add(
        factories.payment(customer.id, provider="stripe", provider_payment_id="pi_Abc", reference="Booking-7")
    )
    await session.commit()

    assert await payments.by_provider_id("stripe", "pi_abc") is None
    assert await payments.by_provider_id("stripe", "pi_Abc ") is None
    assert await payments.by_provider_id("STRIPE", "pi_Abc") is None
    assert (await payments.by_provider_id("stripe", "pi_Abc")).id == payment.id  # type: ignore[union-attr]
    found = await session.scalars(sa.select(m.Payment.id).where(m.Payment.reference == "booking-7"))
    assert found.all() == []
    found = await session.scalars(sa.select(m.Payment.id).where(m.Payment.reference == "Booking-7"))
    assert found.all() == [payment.id]
    assert isinstance(payment.id, uuid.UUID)
