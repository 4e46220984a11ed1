"""Provider failures become problems, and local state stays consistent and explained."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import CheckoutSession
from fastapi_cashier.errors import InvalidProviderRequestError, ProviderConnectionError

from .conftest import Harness

pytestmark = pytest.mark.anyio


async def _failing(*_args: Any, **_kwargs: Any) -> Any:
    raise ProviderConnectionError("connection reset by the provider", provider="fake")


async def _refusing(*_args: Any, **_kwargs: Any) -> Any:
    raise InvalidProviderRequestError("the provider refused the refund", provider="fake", provider_code="x")


async def test_checkout_provider_outage_is_a_503_problem_and_the_intent_is_kept(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness.fake, "create_checkout", _failing)
    response = await harness.client.post(
        "/billing/checkout-sessions",
        json={
            "amount": 900,
            "currency": "EUR",
            "success_url": "https://a.example/",
            "cancel_url": "https://a.example/",
        },
        headers=harness.auth(),
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "provider_unavailable"
    assert response.headers["retry-after"] == "1"
    async with harness.payments.service() as svc:
        rows = (await svc.session.execute(sa.select(CheckoutSession))).scalars().all()
    assert [(row.status.value, row.metadata_.get("provider_error")) for row in rows] == [
        ("expired", "connection reset by the provider")
    ]


async def test_a_retriable_refund_fault_keeps_the_refund_pending_and_the_amount_reserved(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = await harness.pay_one_off(amount=1000)
    payment_id = paid["session"]["payment_id"]
    monkeypatch.setattr(harness.fake, "refund", _failing)
    response = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 600},
        headers=harness.auth("root", admin=True),
    )
    assert response.status_code == 503
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    # The provider may have refunded before the connection dropped: the amount stays reserved,
    # so no second refund can overdraw the payment while this one is unresolved.
    assert payment["refunded_amount"] == 600
    assert payment["status"] == "succeeded"
    over = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 500},
        headers=harness.auth("root", admin=True),
    )
    assert over.status_code == 409
    trail = (
        await harness.client.get(f"/billing/payments/{payment_id}/events", headers=harness.auth())
    ).json()
    assert [(e["entity_type"], e["to_status"]) for e in trail][-1] == ("refund", "pending")


async def test_a_refused_refund_fails_and_releases_the_reservation(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = await harness.pay_one_off(amount=1000)
    payment_id = paid["session"]["payment_id"]
    monkeypatch.setattr(harness.fake, "refund", _refusing)
    response = await harness.client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 600},
        headers=harness.auth("root", admin=True),
    )
    assert response.status_code == 502
    assert response.json()["code"] == "provider_invalid_request"
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert payment["refunded_amount"] == 0
    trail = (
        await harness.client.get(f"/billing/payments/{payment_id}/events", headers=harness.auth())
    ).json()
    refund_moves = [
        (e["from_status"], e["to_status"], e["reason"]) for e in trail if e["entity_type"] == "refund"
    ]
    assert refund_moves == [(None, "pending", None), ("pending", "failed", "the provider refused the refund")]


async def test_the_openapi_document_builds(harness: Harness) -> None:
    response = await harness.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/billing/health",
        "/billing/me",
        "/billing/checkout-sessions",
        "/billing/payments/{payment_id}/events",
        "/billing/admin/payments/{payment_id}/refunds",
        "/billing/webhooks/{provider}",
        "/billing/fake/checkout/{session_id}",
    ):
        assert path in paths
