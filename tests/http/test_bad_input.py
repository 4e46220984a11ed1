"""Bad input is refused with a 422 (or 409) problem that names the field, and changes nothing."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import CheckoutSession, Payment, Refund, StatusChange

from .conftest import Harness

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"

CHECKOUT = {
    "amount": 1000,
    "currency": "EUR",
    "description": "Ticket",
    "success_url": "https://shop.example/ok",
    "cancel_url": "https://shop.example/cancel",
}

# Amounts are integer minor units in (0, 10**15]: nothing else is rounded or coerced.
BAD_AMOUNTS = {
    "float_with_fraction": 10.5,
    "float_whole": 10.0,
    "numeric_string": "10",
    "zero": 0,
    "negative": -500,
    "bool": True,
    "absurdly_large": 10**16,
}

# Cursors the API never returned: not base64, base64 of junk, of the wrong JSON, of a well-formed
# pair with a naive time or a row id that is not a string.
BAD_CURSORS = {
    "garbage": "garbage",
    "percent_signs": "%%%",
    "base64_text": base64.urlsafe_b64encode(b"not-a-cursor").decode(),
    "base64_object": base64.urlsafe_b64encode(b'{"x": 1}').decode(),
    "naive_time": base64.urlsafe_b64encode(
        b'["2026-01-01T00:00:00", "00000000000000000000000000000000"]'
    ).decode(),
    "int_row_id": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", 5]').decode(),
    "list_row_id": base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", [1]]').decode(),
    "before_year_one_in_utc": base64.urlsafe_b64encode(
        b'["0001-01-01T00:00:00+01:00", "00000000000000000000000000000000"]'
    ).decode(),
    "after_year_9999_in_utc": base64.urlsafe_b64encode(
        b'["9999-12-31T23:59:59-01:00", "00000000000000000000000000000000"]'
    ).decode(),
}

# Valid ISO 8601 timestamps with no UTC equivalent (converting them overflows).
OUT_OF_RANGE_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    return problem


def assert_invalid_field(response: httpx.Response, field: str, *, location: str = "body") -> dict[str, Any]:
    """A request-validation 422 whose first refused field is ``field``."""
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["field"] == field, problem
    assert problem["errors"][0]["location"] == location
    assert field in problem["detail"]
    return problem


def assert_domain_refusal(
    response: httpx.Response, field: str, *, status: int = 422, code: str = "validation_error"
) -> dict[str, Any]:
    """A refusal by the domain layer: it names the field in ``details.field``."""
    problem = assert_problem(response, status, code)
    assert problem["details"]["field"] == field, problem
    return problem


@dataclass(frozen=True)
class Counts:
    checkout_sessions: int
    payments: int
    refunds: int
    status_changes: int
    listed_by_alice: int
    listed_by_admin: int


async def counts(harness: Harness) -> Counts:
    async with harness.payments.service() as svc:
        numbers = [
            int(await svc.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)
            for model in (CheckoutSession, Payment, Refund, StatusChange)
        ]
    mine = await harness.client.get("/billing/payments?limit=100", headers=harness.auth("alice"))
    everyone = await harness.client.get("/billing/admin/payments?limit=100", headers=admin(harness))
    assert mine.status_code == everyone.status_code == 200
    return Counts(*numbers, len(mine.json()["items"]), len(everyone.json()["items"]))


def admin(harness: Harness) -> dict[str, str]:
    return harness.auth("root", admin=True)


async def alice_id(harness: Harness) -> str:
    me = await harness.client.get("/billing/me", headers=harness.auth("alice"))
    assert me.status_code == 200
    return str(me.json()["id"])


async def checkout(harness: Harness, body: dict[str, Any]) -> httpx.Response:
    return await harness.client.post("/billing/checkout-sessions", json=body, headers=harness.auth("alice"))


async def record_manual(harness: Harness, **overrides: Any) -> httpx.Response:
    body = {"customer_id": await alice_id(harness), "amount": 5000, "currency": "EUR", "method": "cash"}
    body.update(overrides)
    body = {key: value for key, value in body.items() if value is not _MISSING}
    return await harness.client.post("/billing/admin/payments", json=body, headers=admin(harness))


_MISSING = object()


async def succeeded_manual_payment(harness: Harness, amount: int = 5000) -> dict[str, Any]:
    created = await record_manual(harness, amount=amount)
    assert created.status_code == 201, created.text
    confirmed = await harness.client.patch(
        f"/billing/admin/payments/{created.json()['id']}/status",
        json={"status": "succeeded"},
        headers=admin(harness),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    return dict(confirmed.json())


# ---------------------------------------------------------------------- amounts


@pytest.mark.parametrize("value", BAD_AMOUNTS.values(), ids=BAD_AMOUNTS.keys())
async def test_checkout_refuses_a_bad_amount(harness: Harness, value: Any) -> None:
    before = await counts(harness)
    response = await checkout(harness, {**CHECKOUT, "amount": value})
    assert_invalid_field(response, "amount")
    assert await counts(harness) == before


@pytest.mark.parametrize(
    "value", [*BAD_AMOUNTS.values(), None, _MISSING], ids=[*BAD_AMOUNTS.keys(), "null", "missing"]
)
async def test_manual_payment_refuses_a_bad_amount(harness: Harness, value: Any) -> None:
    before = await counts(harness)
    response = await record_manual(harness, amount=value)
    assert_invalid_field(response, "amount")
    assert await counts(harness) == before


@pytest.mark.parametrize("value", BAD_AMOUNTS.values(), ids=BAD_AMOUNTS.keys())
async def test_refund_refuses_a_bad_amount(harness: Harness, value: Any) -> None:
    payment = await succeeded_manual_payment(harness)
    before = await counts(harness)
    response = await harness.client.post(
        f"/billing/admin/payments/{payment['id']}/refunds", json={"amount": value}, headers=admin(harness)
    )
    assert_invalid_field(response, "amount")
    assert await counts(harness) == before
    detail = await harness.client.get(f"/billing/payments/{payment['id']}", headers=harness.auth("alice"))
    assert detail.json()["refunded_amount"] == 0
    assert detail.json()["status"] == "succeeded"


async def test_the_largest_allowed_amount_is_accepted(harness: Harness) -> None:
    response = await record_manual(harness, amount=10**15)
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == 10**15


# ---------------------------------------------------------------------- currencies


@pytest.mark.parametrize("value", ["ABC", "US", "EURO", "", 123], ids=["ABC", "US", "EURO", "empty", "int"])
async def test_checkout_refuses_a_bad_currency(harness: Harness, value: Any) -> None:
    before = await counts(harness)
    response = await checkout(harness, {**CHECKOUT, "currency": value})
    assert_invalid_field(response, "currency")
    assert await counts(harness) == before


async def test_checkout_currency_defaults_to_the_default_currency(harness: Harness) -> None:
    body = {key: value for key, value in CHECKOUT.items() if key != "currency"}
    response = await checkout(harness, body)
    assert response.status_code == 201, response.text
    assert response.json()["currency"] == harness.settings.default_currency == "USD"


@pytest.mark.parametrize("value", ["ABC", "US", 123, None], ids=["ABC", "US", "int", "null"])
async def test_manual_payment_refuses_a_bad_currency(harness: Harness, value: Any) -> None:
    before = await counts(harness)
    response = await record_manual(harness, currency=value)
    assert_invalid_field(response, "currency")
    assert await counts(harness) == before


async def test_lowercase_currency_is_accepted_and_normalised(harness: Harness) -> None:
    session = await checkout(harness, {**CHECKOUT, "currency": "usd"})
    assert session.status_code == 201, session.text
    assert session.json()["currency"] == "USD"

    manual = await record_manual(harness, currency="usd")
    assert manual.status_code == 201, manual.text
    assert manual.json()["currency"] == "USD"
    listed = await harness.client.get(
        "/billing/admin/payments", params={"provider": "manual"}, headers=admin(harness)
    )
    assert [p["currency"] for p in listed.json()["items"]] == ["USD"]


# ---------------------------------------------------------------------- checkout shape


async def test_checkout_with_both_plan_and_amount_is_refused(harness: Harness) -> None:
    before = await counts(harness)
    response = await checkout(harness, {**CHECKOUT, "plan_id": "5f0c6a36-4d0e-4b8e-9a57-0d8f3f0a9b11"})
    problem = assert_problem(response, 422, "validation_error")
    assert "plan_id" in problem["detail"]
    assert "amount" in problem["detail"]
    assert problem["errors"][0]["field"] == "amount"
    assert await counts(harness) == before


async def test_checkout_with_neither_plan_nor_amount_is_refused(harness: Harness) -> None:
    before = await counts(harness)
    body = {key: value for key, value in CHECKOUT.items() if key != "amount"}
    response = await checkout(harness, body)
    problem = assert_problem(response, 422, "validation_error")
    assert "plan_id" in problem["detail"]
    assert "amount" in problem["detail"]
    assert problem["errors"][0]["field"] == "amount"
    assert await counts(harness) == before


@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
@pytest.mark.parametrize(
    "value", ["ftp://x", "not a url", "", "javascript:alert(1)", "https://x/" + "a" * 2048]
)
async def test_checkout_refuses_a_bad_return_url(harness: Harness, field: str, value: str) -> None:
    before = await counts(harness)
    response = await checkout(harness, {**CHECKOUT, field: value})
    assert_invalid_field(response, field)
    assert await counts(harness) == before


@pytest.mark.parametrize("field", ["success_url", "cancel_url"])
async def test_checkout_requires_return_urls(harness: Harness, field: str) -> None:
    body = {key: value for key, value in CHECKOUT.items() if key != field}
    problem = assert_invalid_field(await checkout(harness, body), field)
    assert problem["errors"][0]["type"] == "missing"


async def test_checkout_refuses_an_unknown_provider(harness: Harness) -> None:
    before = await counts(harness)
    response = await checkout(harness, {**CHECKOUT, "provider": "nope"})
    problem = assert_domain_refusal(response, "provider")
    assert "nope" in problem["detail"]
    assert await counts(harness) == before


async def test_checkout_with_the_manual_provider_is_an_unsupported_capability(harness: Harness) -> None:
    before = await counts(harness)
    response = await checkout(harness, {**CHECKOUT, "provider": "manual"})
    problem = assert_domain_refusal(response, "provider", code="unsupported_capability")
    assert problem["details"]["capability"] == "checkout"
    assert await counts(harness) == before


@pytest.mark.parametrize(
    "path", ["/billing/checkout-sessions", "/billing/admin/payments", "/billing/admin/payments/{id}/refunds"]
)
@pytest.mark.parametrize("raw", [b'{"amount": ', b"amount=10", b"[1, 2", b"\xff\xfe"])
async def test_malformed_json_is_422(harness: Harness, path: str, raw: bytes) -> None:
    payment = await succeeded_manual_payment(harness)
    before = await counts(harness)
    response = await harness.client.post(
        path.format(id=payment["id"]),
        content=raw,
        headers={**admin(harness), "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"]
    assert await counts(harness) == before


async def test_a_body_that_is_not_an_object_is_422(harness: Harness) -> None:
    before = await counts(harness)
    response = await harness.client.post(
        "/billing/checkout-sessions", json=[CHECKOUT], headers=harness.auth("alice")
    )
    assert_problem(response, 422, "validation_error")
    assert await counts(harness) == before


async def test_unknown_fields_are_refused_everywhere(harness: Harness) -> None:
    payment = await succeeded_manual_payment(harness)
    before = await counts(harness)
    session = await checkout(harness, {**CHECKOUT, "amout": 5})
    problem = assert_invalid_field(session, "amout")
    assert problem["errors"][0]["type"] == "extra_forbidden"

    manual = await record_manual(harness, status="succeeded")
    assert_invalid_field(manual, "status")

    refund = await harness.client.post(
        f"/billing/admin/payments/{payment['id']}/refunds",
        json={"amount": 100, "currency": "EUR"},
        headers=admin(harness),
    )
    assert_invalid_field(refund, "currency")

    status = await harness.client.patch(
        f"/billing/admin/payments/{payment['id']}/status",
        json={"status": "succeeded", "force": True},
        headers=admin(harness),
    )
    assert_invalid_field(status, "force")
    assert await counts(harness) == before


async def test_manual_payment_refuses_an_unknown_method(harness: Harness) -> None:
    before = await counts(harness)
    assert_invalid_field(await record_manual(harness, method="bitcoin"), "method")
    assert await counts(harness) == before


async def test_manual_payment_refuses_a_malformed_customer_id(harness: Harness) -> None:
    before = await counts(harness)
    assert_invalid_field(await record_manual(harness, customer_id="alice"), "customer_id")
    assert await counts(harness) == before


# ---------------------------------------------------------------------- listing parameters


@pytest.mark.parametrize("path", ["/billing/payments", "/billing/admin/payments", "/billing/admin/customers"])
@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
async def test_listing_refuses_a_bad_limit(harness: Harness, path: str, limit: str) -> None:
    response = await harness.client.get(path, params={"limit": limit}, headers=admin(harness))
    assert_invalid_field(response, "limit", location="query")


@pytest.mark.parametrize("path", ["/billing/payments", "/billing/admin/payments"])
async def test_listing_accepts_limit_bounds(harness: Harness, path: str) -> None:
    for limit in (1, 100):
        response = await harness.client.get(path, params={"limit": limit}, headers=admin(harness))
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/billing/payments", "/billing/admin/payments", "/billing/admin/customers"])
@pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
async def test_listing_refuses_a_bad_cursor(harness: Harness, path: str, cursor: str) -> None:
    response = await harness.client.get(path, params={"cursor": cursor}, headers=admin(harness))
    assert_domain_refusal(response, "cursor")


@pytest.mark.parametrize("path", ["/billing/payments", "/billing/admin/payments"])
@pytest.mark.parametrize("param", ["created_after", "created_before"])
async def test_listing_refuses_a_naive_timestamp(harness: Harness, path: str, param: str) -> None:
    naive = await harness.client.get(path, params={param: "2026-01-01T00:00:00"}, headers=admin(harness))
    problem = assert_domain_refusal(naive, param)
    assert "time zone" in problem["detail"]
    aware = await harness.client.get(path, params={param: "2026-01-01T00:00:00Z"}, headers=admin(harness))
    assert aware.status_code == 200, aware.text


@pytest.mark.parametrize("path", ["/billing/payments", "/billing/admin/payments"])
@pytest.mark.parametrize("param", ["created_after", "created_before"])
@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
async def test_listing_refuses_a_timestamp_out_of_range(
    harness: Harness, path: str, param: str, value: str
) -> None:
    response = await harness.client.get(path, params={param: value}, headers=admin(harness))
    problem = assert_domain_refusal(response, param)
    assert "out of range" in problem["detail"]


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
async def test_usage_refuses_a_recorded_at_out_of_range(harness: Harness, value: str) -> None:
    response = await harness.client.post(
        f"/billing/subscriptions/{uuid.uuid4()}/usage",
        json={"quantity": 1, "recorded_at": value},
        headers=harness.auth(),
    )
    problem = assert_invalid_field(response, "recorded_at")
    assert "out of range" in problem["detail"]


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
async def test_a_credit_grant_refuses_an_expires_at_out_of_range(harness: Harness, value: str) -> None:
    customer_id = await alice_id(harness)
    response = await harness.client.post(
        f"/billing/admin/customers/{customer_id}/credits",
        json={"amount": 10, "reason": "goodwill", "expires_at": value},
        headers=admin(harness),
    )
    problem = assert_invalid_field(response, "expires_at")
    assert "out of range" in problem["detail"]


@pytest.mark.parametrize("path", ["/billing/payments", "/billing/admin/payments"])
async def test_listing_refuses_an_unknown_status(harness: Harness, path: str) -> None:
    response = await harness.client.get(path, params={"status": "paid"}, headers=admin(harness))
    assert_invalid_field(response, "status", location="query")


# ---------------------------------------------------------------------- refunds and statuses


async def test_refund_of_more_than_is_left_is_409(harness: Harness) -> None:
    payment = await succeeded_manual_payment(harness, amount=5000)
    url = f"/billing/admin/payments/{payment['id']}/refunds"
    too_much = await harness.client.post(url, json={"amount": 5001}, headers=admin(harness))
    problem = assert_problem(too_much, 409, "refund_exceeds_payment")
    assert problem["details"] == {"requested": 5001, "refundable": 5000}

    partial = await harness.client.post(url, json={"amount": 3000}, headers=admin(harness))
    assert partial.status_code == 201, partial.text
    before = await counts(harness)
    rest_plus_one = await harness.client.post(url, json={"amount": 2001}, headers=admin(harness))
    assert_problem(rest_plus_one, 409, "refund_exceeds_payment")
    assert await counts(harness) == before

    detail = (
        await harness.client.get(f"/billing/payments/{payment['id']}", headers=harness.auth("alice"))
    ).json()
    assert (detail["status"], detail["refunded_amount"]) == ("partially_refunded", 3000)

    rest = await harness.client.post(url, json={}, headers=admin(harness))
    assert rest.status_code == 201, rest.text
    assert rest.json()["amount"] == 2000
    nothing_left = await harness.client.post(url, json={"amount": 1}, headers=admin(harness))
    assert_problem(nothing_left, 409, "conflict")  # a refunded payment is no longer refundable


async def test_refund_of_a_declined_payment_is_409(harness: Harness) -> None:
    declined = await harness.pay_one_off("alice", outcome="declined")
    payment_id = declined["session"]["payment_id"]
    payment = (
        await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth("alice"))
    ).json()
    assert payment["status"] == "failed"
    before = await counts(harness)
    for body in ({}, {"amount": 100}):
        response = await harness.client.post(
            f"/billing/admin/payments/{payment_id}/refunds", json=body, headers=admin(harness)
        )
        problem = assert_problem(response, 409, "conflict")
        assert problem["details"]["status"] == "failed"
    assert await counts(harness) == before


async def test_refund_of_a_pending_manual_payment_is_409(harness: Harness) -> None:
    created = await record_manual(harness)
    before = await counts(harness)
    response = await harness.client.post(
        f"/billing/admin/payments/{created.json()['id']}/refunds", json={}, headers=admin(harness)
    )
    assert_problem(response, 409, "conflict")
    assert await counts(harness) == before


async def test_status_of_a_provider_payment_cannot_be_set_by_an_admin(harness: Harness) -> None:
    paid = await harness.pay_one_off("alice")
    payment_id = paid["session"]["payment_id"]
    before = await counts(harness)
    response = await harness.client.patch(
        f"/billing/admin/payments/{payment_id}/status", json={"status": "failed"}, headers=admin(harness)
    )
    problem = assert_problem(response, 409, "conflict")
    assert problem["details"]["provider"] == "fake"
    assert await counts(harness) == before
    detail = (
        await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth("alice"))
    ).json()
    assert detail["status"] == "succeeded"


@pytest.mark.parametrize("status", ["refunded", "partially_refunded", "pending", "requires_action"])
async def test_an_admin_may_only_set_processing_succeeded_failed_or_canceled(
    harness: Harness, status: str
) -> None:
    created = await record_manual(harness)
    before = await counts(harness)
    response = await harness.client.patch(
        f"/billing/admin/payments/{created.json()['id']}/status",
        json={"status": status},
        headers=admin(harness),
    )
    problem = assert_domain_refusal(response, "status")
    assert "refund" in problem["detail"]
    assert await counts(harness) == before
    detail = await harness.client.get(
        f"/billing/payments/{created.json()['id']}", headers=harness.auth("alice")
    )
    assert detail.json()["status"] == "pending"


async def test_an_unknown_status_is_422(harness: Harness) -> None:
    created = await record_manual(harness)
    response = await harness.client.patch(
        f"/billing/admin/payments/{created.json()['id']}/status",
        json={"status": "paid"},
        headers=admin(harness),
    )
    assert_invalid_field(response, "status")


@pytest.mark.parametrize(
    ("path", "then"),
    [
        (["succeeded"], "processing"),
        (["succeeded"], "canceled"),
        (["canceled"], "succeeded"),
        (["processing"], "canceled"),
    ],
)
async def test_an_invalid_transition_is_409(harness: Harness, path: list[str], then: str) -> None:
    created = await record_manual(harness)
    url = f"/billing/admin/payments/{created.json()['id']}/status"
    for step in path:
        moved = await harness.client.patch(url, json={"status": step}, headers=admin(harness))
        assert moved.status_code == 200, moved.text
    before = await counts(harness)
    response = await harness.client.patch(url, json={"status": then}, headers=admin(harness))
    assert_problem(response, 409, "invalid_transition")
    assert await counts(harness) == before
    detail = await harness.client.get(
        f"/billing/payments/{created.json()['id']}", headers=harness.auth("alice")
    )
    assert detail.json()["status"] == path[-1]


# ---------------------------------------------------------------------- billing profile


async def test_billing_profile_refuses_a_country_name(harness: Harness) -> None:
    response = await harness.client.put(
        "/billing/me/billing-profile", json={"country": "Germany"}, headers=harness.auth("alice")
    )
    assert_invalid_field(response, "country")
    missing = await harness.client.get("/billing/me/billing-profile", headers=harness.auth("alice"))
    assert_problem(missing, 404, "not_found")


@pytest.mark.parametrize("country", ["D1", "12", "Ü1"])
async def test_billing_profile_refuses_a_country_that_is_not_two_letters(
    harness: Harness, country: str
) -> None:
    response = await harness.client.put(
        "/billing/me/billing-profile", json={"country": country}, headers=harness.auth("alice")
    )
    assert_domain_refusal(response, "country")


@pytest.mark.parametrize("tax_id", ["DE123", "DE136695977", "FR136695976", "136695976x"])
async def test_billing_profile_refuses_a_malformed_eu_vat_number(harness: Harness, tax_id: str) -> None:
    response = await harness.client.put(
        "/billing/me/billing-profile",
        json={"country": "DE", "tax_id": tax_id, "legal_name": "Example GmbH"},
        headers=harness.auth("alice"),
    )
    assert_domain_refusal(response, "tax_id")
    missing = await harness.client.get("/billing/me/billing-profile", headers=harness.auth("alice"))
    assert_problem(missing, 404, "not_found")


async def test_billing_profile_accepts_a_valid_german_vat_number(harness: Harness) -> None:
    body = {
        "legal_name": "Example GmbH",
        "address_line1": "Hauptstr. 1",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "de",
        "tax_id": "DE 136 695 976",
    }
    response = await harness.client.put(
        "/billing/me/billing-profile", json=body, headers=harness.auth("alice")
    )
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["country"] == "DE"
    assert saved["tax_id"] == "DE136695976"
    assert saved["tax_id_status"] == "unverified"
    assert saved["tax_exempt"] is False
    again = await harness.client.get("/billing/me/billing-profile", headers=harness.auth("alice"))
    assert again.json() == saved

    # A refused update leaves the saved profile as it was.
    refused = await harness.client.put(
        "/billing/me/billing-profile", json={**body, "tax_id": "DE123"}, headers=harness.auth("alice")
    )
    assert_domain_refusal(refused, "tax_id")
    unchanged = await harness.client.get("/billing/me/billing-profile", headers=harness.auth("alice"))
    assert unchanged.json() == saved


async def test_billing_profile_refuses_unknown_fields(harness: Harness) -> None:
    response = await harness.client.put(
        "/billing/me/billing-profile",
        json={"country": "DE", "vat": "DE136695976"},
        headers=harness.auth("alice"),
    )
    assert_invalid_field(response, "vat")


# PostgreSQL cannot store or compare text containing U+0000: these answered 500 there (and were
# stored on SQLite and MariaDB). Every database now refuses them alike, naming the field.
NUL_BODIES = {
    "product_name": ("/billing/admin/products", {"name": "Tea\u0000set"}, "name"),
    "metadata_key": ("/billing/admin/products", {"name": "Tea", "metadata": {"k\u0000": "v"}}, "metadata"),
    "checkout_description": (
        "/billing/checkout-sessions",
        {**CHECKOUT, "description": "\u0000"},
        "description",
    ),
}


@pytest.mark.parametrize("case", sorted(NUL_BODIES))
async def test_text_with_a_nul_character_is_refused(harness: Harness, case: str) -> None:
    path, body, field = NUL_BODIES[case]
    response = await harness.client.post(path, json=body, headers=harness.auth("root", admin=True))
    problem = assert_invalid_field(response, field)
    assert "NUL" in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/billing/payments?reference=a%00b", "reference"),
        ("/billing/payments?provider=%00", "provider"),
        ("/billing/admin/payments?reference=%00", "reference"),
        ("/billing/admin/customers?email=a%00@example.com", "email"),
        ("/billing/admin/webhook-events?type=%00", "type"),
    ],
)
async def test_a_query_filter_with_a_nul_character_is_refused(
    harness: Harness, path: str, parameter: str
) -> None:
    response = await harness.client.get(path, headers=harness.auth("root", admin=True))
    assert_invalid_field(response, parameter, location="query")
