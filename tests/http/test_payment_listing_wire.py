"""The payment listings answer the bytes their response model renders, from rows of the shown columns."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from fastapi_cashier.api.schemas import Page, PaymentOut
from fastapi_cashier.db.models import Payment

from .conftest import Harness

pytestmark = pytest.mark.anyio

DESCRIPTIONS = (
    'Café «Ünïcode» "quoted" \\ back\tslash\nnew line \x01 \u2028 € 😀',
    "plain",
    None,
)


def rendered(items: list[Payment], next_cursor: str | None) -> bytes:
    """What FastAPI renders for ``response_model=Page[PaymentOut]``: validate, dump (JSON mode),
    then Starlette's ``JSONResponse.render``."""
    page = Page[PaymentOut].model_validate({"items": items, "next_cursor": next_cursor}, from_attributes=True)
    return json.dumps(
        page.model_dump(mode="json"), ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def test_both_listings_answer_what_the_response_model_renders(harness: Harness) -> None:
    me = (await harness.client.get("/billing/me", headers=harness.auth("alice"))).json()
    admin = harness.auth("ops", admin=True)
    for number, description in enumerate(DESCRIPTIONS * 2):
        recorded = await harness.client.post(
            "/billing/admin/payments",
            json={
                "customer_id": me["id"],
                "amount": 1000 + number,
                "currency": "EUR",
                "method": "cash",
                "reference": f"booking-{number}-ü",
                "description": description,
            },
            headers=admin,
        )
        assert recorded.status_code == 201, recorded.text
    await harness.pay_one_off("alice", amount=4200)

    async with harness.payments.read_service() as svc:
        stmt = sa.select(Payment).order_by(Payment.created_at.desc(), Payment.id.desc())
        stored = list((await svc.session.scalars(stmt)).all())
    assert len(stored) == 7

    for path, headers in (("/billing/payments", harness.auth("alice")), ("/billing/admin/payments", admin)):
        first = await harness.client.get(f"{path}?limit=4", headers=headers)
        assert first.status_code == 200, first.text
        assert first.headers["content-type"] == "application/json"
        cursor = first.json()["next_cursor"]
        assert cursor is not None
        assert first.content == rendered(stored[:4], cursor)
        rest = await harness.client.get(f"{path}?limit=4&cursor={cursor}", headers=headers)
        assert rest.content == rendered(stored[4:], None)
        # Filters still apply, on both.
        succeeded = await harness.client.get(f"{path}?status=succeeded&provider=fake", headers=headers)
        assert [item["amount"] for item in succeeded.json()["items"]] == [4200]
