"""Who may call what: 401 without credentials, 403 for non-admins, 404 for other customers' ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header

from fastapi_cashier import AuthenticationError, PaymentsRouter, Principal
from fastapi_cashier.api.auth import create_token
from fastapi_cashier.settings import AuthSettings

from .conftest import Harness, settings_for

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
SOME_ID = "5f0c6a36-4d0e-4b8e-9a57-0d8f3f0a9b11"

CUSTOMER_ENDPOINTS = [
    ("GET", "/me"),
    ("PATCH", "/me"),
    ("GET", "/me/billing-profile"),
    ("PUT", "/me/billing-profile"),
    ("POST", "/checkout-sessions"),
    ("GET", f"/checkout-sessions/{SOME_ID}"),
    ("GET", "/payments"),
    ("GET", f"/payments/{SOME_ID}"),
    ("GET", f"/payments/{SOME_ID}/events"),
]

ADMIN_ENDPOINTS = [
    ("GET", "/admin/customers"),
    ("GET", "/admin/payments"),
    ("POST", "/admin/payments"),
    ("POST", f"/admin/payments/{SOME_ID}/refunds"),
    ("PATCH", f"/admin/payments/{SOME_ID}/status"),
    ("GET", "/admin/summary"),
]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    return problem


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    # An (invalid) body on writes: authentication must be decided before the body is validated.
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    return await client.request(method, f"/billing{path}", json=body, headers=headers or {})


async def payment_count(harness: Harness) -> int:
    listing = await harness.client.get(
        "/billing/admin/payments?limit=100", headers=harness.auth("root", admin=True)
    )
    assert listing.status_code == 200
    return len(listing.json()["items"])


# ---------------------------------------------------------------------- 401: no or bad credentials


@pytest.mark.parametrize(("method", "path"), CUSTOMER_ENDPOINTS + ADMIN_ENDPOINTS)
async def test_anonymous_caller_gets_401_with_bearer_challenge(
    harness: Harness, method: str, path: str
) -> None:
    response = await call(harness.client, method, path)
    problem = assert_problem(response, 401, "authentication_required")
    assert response.headers["www-authenticate"] == "Bearer"
    assert problem["instance"] == f"/billing{path}"


async def test_anonymous_calls_create_nothing(harness: Harness) -> None:
    for method, path in CUSTOMER_ENDPOINTS + ADMIN_ENDPOINTS:
        await call(harness.client, method, path)
    customers = await harness.client.get("/billing/admin/customers", headers=harness.auth("root", admin=True))
    # Refused callers leave no customer behind (admin routes never create one for the admin).
    assert customers.json()["items"] == []
    assert await payment_count(harness) == 0


def _expired(harness: Harness) -> str:
    return create_token(
        harness.settings.auth,
        "alice",
        roles=["admin"],
        now=datetime.now(UTC) - timedelta(hours=2),
        expires_in=timedelta(hours=1),
    )


def _other_secret(_: Harness) -> str:
    other = AuthSettings(jwt_secret="a-completely-different-secret-of-enough-length")
    return create_token(other, "alice", roles=["admin"])


BAD_CREDENTIALS = {
    "expired": lambda h: f"Bearer {_expired(h)}",
    "other_secret": lambda h: f"Bearer {_other_secret(h)}",
    "garbage": lambda h: "Bearer not-a-jwt-at-all",
    "three_garbage_parts": lambda h: "Bearer aaa.bbb.ccc",
    "empty_bearer": lambda h: "Bearer ",
    "basic_scheme": lambda h: "Basic YWxpY2U6c2VjcmV0",
    "token_without_scheme": lambda h: h.token("alice", admin=True),
}


@pytest.mark.parametrize("kind", sorted(BAD_CREDENTIALS))
@pytest.mark.parametrize("path", ["/billing/me", "/billing/admin/summary"])
async def test_bad_credentials_get_401(harness: Harness, kind: str, path: str) -> None:
    authorization = BAD_CREDENTIALS[kind](harness)
    response = await harness.client.get(path, headers={"Authorization": authorization})
    assert_problem(response, 401, "authentication_required")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_expired_token_problem_says_so(harness: Harness) -> None:
    response = await harness.client.get(
        "/billing/me", headers={"Authorization": f"Bearer {_expired(harness)}"}
    )
    problem = assert_problem(response, 401, "authentication_required")
    assert "expired" in problem["detail"]


async def test_token_with_another_secret_problem_says_signature(harness: Harness) -> None:
    response = await harness.client.get(
        "/billing/me", headers={"Authorization": f"Bearer {_other_secret(harness)}"}
    )
    problem = assert_problem(response, 401, "authentication_required")
    assert "signature" in problem["detail"]


async def test_good_token_is_accepted_for_contrast(harness: Harness) -> None:
    assert (await harness.client.get("/billing/me", headers=harness.auth("alice"))).status_code == 200
    summary = await harness.client.get("/billing/admin/summary", headers=harness.auth("root", admin=True))
    assert summary.status_code == 200


# ---------------------------------------------------------------------- 403: not an admin


@pytest.mark.parametrize(("method", "path"), ADMIN_ENDPOINTS)
async def test_non_admin_gets_403_on_admin_endpoints(harness: Harness, method: str, path: str) -> None:
    response = await call(harness.client, method, path, harness.auth("alice"))
    assert_problem(response, 403, "permission_denied")


async def test_non_admin_cannot_record_or_refund_even_with_a_valid_body(harness: Harness) -> None:
    me = (await harness.client.get("/billing/me", headers=harness.auth("alice"))).json()
    record = await harness.client.post(
        "/billing/admin/payments",
        json={"customer_id": me["id"], "amount": 1000, "currency": "EUR", "method": "cash"},
        headers=harness.auth("alice"),
    )
    assert_problem(record, 403, "permission_denied")
    paid = await harness.pay_one_off("alice")
    refund = await harness.client.post(
        f"/billing/admin/payments/{paid['session']['payment_id']}/refunds",
        json={"amount": 100},
        headers=harness.auth("alice"),
    )
    assert_problem(refund, 403, "permission_denied")
    payment = await harness.client.get(
        f"/billing/payments/{paid['session']['payment_id']}", headers=harness.auth("alice")
    )
    assert payment.json()["refunded_amount"] == 0
    assert await payment_count(harness) == 1


# ---------------------------------------------------------------------- 404: someone else's ids


async def test_bob_cannot_see_alices_checkout_session_payment_or_events(harness: Harness) -> None:
    paid = await harness.pay_one_off("alice")
    session_id = paid["session"]["id"]
    payment_id = paid["session"]["payment_id"]
    own_paths = [
        f"/billing/checkout-sessions/{session_id}",
        f"/billing/payments/{payment_id}",
        f"/billing/payments/{payment_id}/events",
    ]
    for path in own_paths:
        assert (await harness.client.get(path, headers=harness.auth("alice"))).status_code == 200
        problem = assert_problem(
            await harness.client.get(path, headers=harness.auth("bob")), 404, "not_found"
        )
        assert problem["instance"] == path
    bob_list = await harness.client.get("/billing/payments", headers=harness.auth("bob"))
    assert bob_list.json() == {"items": [], "next_cursor": None}


async def test_alice_cannot_see_bobs_payment_either(harness: Harness) -> None:
    paid = await harness.pay_one_off("bob", amount=999)
    response = await harness.client.get(
        f"/billing/payments/{paid['session']['payment_id']}", headers=harness.auth("alice")
    )
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    "template",
    ["/billing/checkout-sessions/{id}", "/billing/payments/{id}", "/billing/payments/{id}/events"],
)
async def test_unknown_uuid_is_404(harness: Harness, template: str) -> None:
    response = await harness.client.get(template.format(id=uuid.uuid4()), headers=harness.auth("alice"))
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ("/billing/checkout-sessions/{id}", "session_id"),
        ("/billing/payments/{id}", "payment_id"),
        ("/billing/payments/{id}/events", "payment_id"),
    ],
)
@pytest.mark.parametrize("bad", ["not-a-uuid", "12345", "5f0c6a36-4d0e-4b8e-9a57-0d8f3f0a9bZZ"])
async def test_malformed_uuid_in_path_is_422_naming_the_field(
    harness: Harness, template: str, field: str, bad: str
) -> None:
    response = await harness.client.get(template.format(id=bad), headers=harness.auth("alice"))
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["field"] == field
    assert problem["errors"][0]["location"] == "path"


async def test_admin_endpoints_with_unknown_payment_are_404(harness: Harness) -> None:
    admin = harness.auth("root", admin=True)
    refund = await harness.client.post(
        f"/billing/admin/payments/{uuid.uuid4()}/refunds", json={"amount": 1}, headers=admin
    )
    assert_problem(refund, 404, "not_found")
    status = await harness.client.patch(
        f"/billing/admin/payments/{uuid.uuid4()}/status", json={"status": "succeeded"}, headers=admin
    )
    assert_problem(status, 404, "not_found")
    record = await harness.client.post(
        "/billing/admin/payments",
        json={"customer_id": str(uuid.uuid4()), "amount": 100, "currency": "EUR", "method": "cash"},
        headers=admin,
    )
    assert_problem(record, 404, "not_found")
    assert await payment_count(harness) == 0


# ---------------------------------------------------------------------- /me


async def test_me_is_created_on_first_use_from_the_token(harness: Harness) -> None:
    token = harness.token("user-42", email="u42@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    first = await harness.client.get("/billing/me", headers=headers)
    assert first.status_code == 200
    me = first.json()
    assert me["external_id"] == "user-42"
    assert me["email"] == "u42@example.com"
    assert me["name"] is None
    uuid.UUID(me["id"])

    second = await harness.client.get("/billing/me", headers=headers)
    assert second.json()["id"] == me["id"]

    admin = harness.auth("root", admin=True)
    customers = (await harness.client.get("/billing/admin/customers", headers=admin)).json()["items"]
    assert [c["external_id"] for c in customers] == ["user-42"]


async def test_two_subjects_get_two_customers(harness: Harness) -> None:
    alice = (await harness.client.get("/billing/me", headers=harness.auth("alice"))).json()
    bob = (await harness.client.get("/billing/me", headers=harness.auth("bob"))).json()
    assert alice["id"] != bob["id"]
    assert (alice["external_id"], bob["external_id"]) == ("alice", "bob")


async def test_patch_me_updates_email_and_name(harness: Harness) -> None:
    created = (await harness.client.get("/billing/me", headers=harness.auth("alice"))).json()
    assert created["email"] is None

    updated = await harness.client.patch(
        "/billing/me", json={"email": "alice@example.com", "name": "Alice A."}, headers=harness.auth("alice")
    )
    assert updated.status_code == 200, updated.text
    assert updated.json() == {
        "id": created["id"],
        "external_id": "alice",
        "email": "alice@example.com",
        "name": "Alice A.",
    }
    # A field left out stays as it is.
    renamed = await harness.client.patch(
        "/billing/me", json={"name": "Alice B."}, headers=harness.auth("alice")
    )
    assert renamed.json()["email"] == "alice@example.com"
    assert renamed.json()["name"] == "Alice B."

    again = (await harness.client.get("/billing/me", headers=harness.auth("alice"))).json()
    assert again == renamed.json()
    # Bob is unaffected.
    bob = (await harness.client.get("/billing/me", headers=harness.auth("bob"))).json()
    assert bob["email"] is None
    assert bob["name"] is None


async def test_patch_me_refuses_a_malformed_email(harness: Harness) -> None:
    response = await harness.client.patch(
        "/billing/me", json={"email": "not an email"}, headers=harness.auth("alice")
    )
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["field"] == "email"
    me = (await harness.client.get("/billing/me", headers=harness.auth("alice"))).json()
    assert me["email"] is None


# ---------------------------------------------------------------------- admin listing


async def test_admin_sees_everyones_payments_with_filters_and_pagination(harness: Harness) -> None:
    admin = harness.auth("root", admin=True)
    alice_paid = await harness.pay_one_off("alice", amount=1000, reference="order-a")
    bob_paid = await harness.pay_one_off("bob", amount=2000, reference="order-b")
    bob_declined = await harness.pay_one_off("bob", amount=3000, outcome="declined", reference="order-c")
    bob_me = (await harness.client.get("/billing/me", headers=harness.auth("bob"))).json()
    alice_me = (await harness.client.get("/billing/me", headers=harness.auth("alice"))).json()
    manual = await harness.client.post(
        "/billing/admin/payments",
        json={
            "customer_id": bob_me["id"],
            "amount": 4000,
            "currency": "EUR",
            "method": "cash",
            "reference": "till-1",
        },
        headers=admin,
    )
    assert manual.status_code == 201, manual.text

    ids = {
        "alice": alice_paid["session"]["payment_id"],
        "bob": bob_paid["session"]["payment_id"],
        "declined": bob_declined["session"]["payment_id"],
        "manual": manual.json()["id"],
    }

    async def listed(**params: Any) -> list[str]:
        response = await harness.client.get("/billing/admin/payments", params=params, headers=admin)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    everything = await listed()
    assert set(everything) == set(ids.values())
    assert len(everything) == 4

    assert set(await listed(status="succeeded")) == {ids["alice"], ids["bob"]}
    assert await listed(status="failed") == [ids["declined"]]
    assert await listed(status="pending") == [ids["manual"]]
    assert await listed(status="refunded") == []
    assert await listed(provider="manual") == [ids["manual"]]
    assert set(await listed(provider="fake")) == {ids["alice"], ids["bob"], ids["declined"]}
    assert await listed(reference="order-b") == [ids["bob"]]
    assert await listed(reference="no-such-reference") == []
    assert await listed(customer_id=alice_me["id"]) == [ids["alice"]]
    assert set(await listed(customer_id=bob_me["id"])) == {ids["bob"], ids["declined"], ids["manual"]}
    assert await listed(customer_id=bob_me["id"], provider="fake", status="succeeded") == [ids["bob"]]

    # Cursor pagination, one at a time: every payment exactly once, in the unpaginated order.
    walked: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 1}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await harness.client.get("/billing/admin/payments", params=params, headers=admin)).json()
        assert len(page["items"]) <= 1
        walked.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None
    assert walked == everything

    # Customers see only their own.
    alice_list = (await harness.client.get("/billing/payments", headers=harness.auth("alice"))).json()
    assert [p["id"] for p in alice_list["items"]] == [ids["alice"]]
    bob_list = (await harness.client.get("/billing/payments", headers=harness.auth("bob"))).json()
    assert {p["id"] for p in bob_list["items"]} == {ids["bob"], ids["declined"], ids["manual"]}


async def test_admin_customer_listing_pages_through_everyone(harness: Harness) -> None:
    for subject in ("alice", "bob", "carol"):
        assert (await harness.client.get("/billing/me", headers=harness.auth(subject))).status_code == 200
    admin = harness.auth("root", admin=True)
    first = (await harness.client.get("/billing/admin/customers?limit=2", headers=admin)).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = (
        await harness.client.get(
            "/billing/admin/customers", params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin
        )
    ).json()
    assert second["next_cursor"] is None
    subjects = [c["external_id"] for c in first["items"] + second["items"]]
    assert sorted(subjects) == ["alice", "bob", "carol"]


# ---------------------------------------------------------------------- the host's authenticate= hook


async def x_user_principal(
    x_user: Annotated[str | None, Header()] = None,
    x_admin: Annotated[str | None, Header()] = None,
) -> Principal:
    if not x_user:
        raise AuthenticationError("send X-User")
    return Principal(subject=x_user, email=f"{x_user}@host.example", is_admin=x_admin == "yes")


@pytest.fixture
async def host_client(engine: Any, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A router with the host's own auth (no JWT key at all), mounted in a fresh app."""
    settings = settings_for(database_url, auth={"mode": "jwt"})
    assert settings.auth.jwt_secret is None
    payments = PaymentsRouter(settings, authenticate=x_user_principal)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_host_authenticate_hook_works_end_to_end(host_client: httpx.AsyncClient) -> None:
    client = host_client
    anonymous = await client.get("/billing/me")
    problem = assert_problem(anonymous, 401, "authentication_required")
    assert problem["detail"] == "send X-User"
    assert anonymous.headers["www-authenticate"] == "Bearer"

    # A bearer token means nothing to this router: the host decides.
    bearer = await client.get("/billing/me", headers={"Authorization": "Bearer whatever"})
    assert_problem(bearer, 401, "authentication_required")

    me = await client.get("/billing/me", headers={"X-User": "host-alice"})
    assert me.status_code == 200, me.text
    assert me.json()["external_id"] == "host-alice"
    assert me.json()["email"] == "host-alice@host.example"

    created = await client.post(
        "/billing/checkout-sessions",
        json={
            "amount": 1500,
            "currency": "EUR",
            "success_url": "https://host.example/ok",
            "cancel_url": "https://host.example/cancel",
        },
        headers={"X-User": "host-alice"},
    )
    assert created.status_code == 201, created.text
    provider_session_id = created.json()["url"].rsplit("/", 1)[1]
    submitted = await client.post(
        f"/billing/fake/checkout/{provider_session_id}", data={"outcome": "succeeded"}
    )
    assert submitted.status_code == 303
    assert submitted.headers["location"] == "https://host.example/ok"

    payments = (await client.get("/billing/payments", headers={"X-User": "host-alice"})).json()["items"]
    assert [(p["amount"], p["status"]) for p in payments] == [(1500, "succeeded")]
    payment_id = payments[0]["id"]

    # Another host user sees nothing of it.
    other = await client.get(f"/billing/payments/{payment_id}", headers={"X-User": "host-bob"})
    assert_problem(other, 404, "not_found")

    # Admin rights come from the host's principal too.
    denied = await client.get("/billing/admin/payments", headers={"X-User": "host-alice"})
    assert_problem(denied, 403, "permission_denied")
    listing = await client.get("/billing/admin/payments", headers={"X-User": "host-root", "X-Admin": "yes"})
    assert listing.status_code == 200
    assert [p["id"] for p in listing.json()["items"]] == [payment_id]
    refund = await client.post(
        f"/billing/admin/payments/{payment_id}/refunds",
        json={"amount": 500},
        headers={"X-User": "host-root", "X-Admin": "yes"},
    )
    assert refund.status_code == 201, refund.text
    detail = await client.get(f"/billing/payments/{payment_id}", headers={"X-User": "host-alice"})
    assert detail.json()["refunded_amount"] == 500


# ---------------------------------------------------------------------- claims the database cannot store


@pytest.mark.parametrize(
    "subject", ["ali\x00ce", "\x00", "a" * 256], ids=["nul_inside", "only_nul", "too_long"]
)
async def test_a_subject_the_database_cannot_store_is_refused_with_401(
    harness: Harness, subject: str
) -> None:
    token = create_token(harness.settings.auth, subject)

    response = await harness.client.get("/billing/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "sub" in response.json()["detail"]
    # The caller is refused, nobody is locked out: alice still works, and no row was written.
    assert (await harness.client.get("/billing/me", headers=harness.auth("alice"))).status_code == 200
    customers = await harness.client.get("/billing/admin/customers", headers=harness.auth("root", admin=True))
    assert [c["external_id"] for c in customers.json()["items"]] == ["alice"]


@pytest.mark.parametrize(
    "email", ["bob\x00@example.com", "b" * 310 + "@example.com", "   "], ids=["nul", "too_long", "blank"]
)
async def test_an_email_the_database_cannot_store_is_dropped(harness: Harness, email: str) -> None:
    token = create_token(harness.settings.auth, "bob", email=email)
    headers = {"Authorization": f"Bearer {token}"}

    first = await harness.client.get("/billing/me", headers=headers)
    again = await harness.client.get("/billing/me", headers=headers)

    assert first.status_code == 200, first.text
    assert first.json()["external_id"] == "bob"
    assert first.json()["email"] is None
    assert again.json()["id"] == first.json()["id"]


async def test_a_host_authenticator_returning_an_unstorable_subject_is_refused(
    engine: Any, database_url: str
) -> None:
    async def authenticate(x_user: Annotated[str, Header()]) -> Principal:
        return Principal(subject=x_user.replace("NUL", "\x00"))

    payments = PaymentsRouter(settings_for(database_url), authenticate=authenticate)
    app = FastAPI()
    app.include_router(payments, prefix="/billing")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            refused = await client.get("/billing/me", headers={"X-User": "carolNUL"})
            accepted = await client.get("/billing/me", headers={"X-User": "carol"})

    assert refused.status_code == 401, refused.text
    assert accepted.status_code == 200, accepted.text
