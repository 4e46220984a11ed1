"""The whole one-off payment flow through HTTP with the fake provider."""

from __future__ import annotations

import pytest

from .conftest import Harness

pytestmark = pytest.mark.anyio


async def test_pay_succeeds_and_the_payment_appears_with_its_audit_trail(harness: Harness) -> None:
    result = await harness.pay_one_off(reference="booking-42")
    assert result["redirect"] == "https://shop.example/ok"
    session = result["session"]
    assert session["status"] == "complete"
    assert session["payment_id"] is not None

    listing = await harness.client.get("/billing/payments", headers=harness.auth())
    assert listing.status_code == 200
    items = listing.json()["items"]
    assert len(items) == 1
    payment = items[0]
    assert payment["id"] == session["payment_id"]
    assert payment["status"] == "succeeded"
    assert payment["amount"] == 2500
    assert payment["currency"] == "EUR"
    assert payment["reference"] == "booking-42"
    assert payment["refunded_amount"] == 0

    events = await harness.client.get(f"/billing/payments/{payment['id']}/events", headers=harness.auth())
    trail = [(e["from_status"], e["to_status"], e["cause"]) for e in events.json()]
    assert trail == [(None, "pending", "webhook"), ("pending", "succeeded", "webhook")]


async def test_decline_leaves_the_session_open_and_a_retry_on_the_same_page_succeeds(
    harness: Harness,
) -> None:
    declined = await harness.pay_one_off(outcome="declined")
    assert declined["redirect"] == "https://shop.example/cancel"
    session = declined["session"]
    assert session["status"] == "open"
    payment = (
        await harness.client.get(f"/billing/payments/{session['payment_id']}", headers=harness.auth())
    ).json()
    assert payment["status"] == "failed"
    assert payment["failure_code"] == "card_declined"

    provider_session_id = session["url"].rsplit("/", 1)[1]
    retried = await harness.client.post(
        f"/billing/fake/checkout/{provider_session_id}", data={"outcome": "succeeded"}
    )
    assert retried.headers["location"] == "https://shop.example/ok"
    payment = (
        await harness.client.get(f"/billing/payments/{session['payment_id']}", headers=harness.auth())
    ).json()
    assert payment["status"] == "succeeded"
    assert payment["failure_code"] is None
    events = await harness.client.get(f"/billing/payments/{payment['id']}/events", headers=harness.auth())
    assert [e["to_status"] for e in events.json()] == ["pending", "failed", "succeeded"]


@pytest.mark.parametrize(
    ("result", "final", "landing"), [("succeeded", "succeeded", "ok"), ("failed", "failed", "cancel")]
)
async def test_three_d_secure(harness: Harness, result: str, final: str, landing: str) -> None:
    step = await harness.pay_one_off(outcome="requires_action")
    session = step["session"]
    provider_session_id = session["url"].rsplit("/", 1)[1]
    assert step["redirect"].endswith(f"/billing/fake/checkout/{provider_session_id}/authenticate")
    payment_id = session["payment_id"]
    pending = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert pending["status"] == "requires_action"

    page = await harness.client.get(step["redirect"])
    assert page.status_code == 200
    assert 'id="authenticate"' in page.text
    done = await harness.client.post(step["redirect"], data={"result": result})
    assert done.status_code == 303
    assert done.headers["location"] == f"https://shop.example/{landing}"
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert payment["status"] == final


async def test_the_checkout_page_is_real_html_with_the_amount(harness: Harness) -> None:
    created = await harness.client.post(
        "/billing/checkout-sessions",
        json={
            "amount": 123456,
            "currency": "JPY",
            "description": "<b>Tea</b> set",
            "success_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/cancel",
        },
        headers=harness.auth(),
    )
    assert created.status_code == 201
    page = await harness.client.get(created.json()["url"].replace("http://testserver", ""))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "123456" in page.text.replace(",", "")
    assert "&lt;b&gt;Tea&lt;/b&gt; set" in page.text
    for button in ('id="pay"', 'id="decline"', 'id="three-d-secure"'):
        assert button in page.text


async def test_host_hooks_run_once_per_event_after_commit(harness: Harness) -> None:
    seen: list[tuple[str, str]] = []

    @harness.payments.on("payment.succeeded")
    async def record(event) -> None:  # type: ignore[no-untyped-def]
        # The change is committed: a fresh session already sees it.
        async with harness.payments.service() as svc:
            payment = await svc.payments.get(event.entity_id)
            assert payment.status.value == "succeeded"
        seen.append((event.type, str(event.entity_id)))

    @harness.payments.on("payment.failed")
    async def broken(event) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("a failing hook must not lose the event")

    first = await harness.pay_one_off(outcome="declined")
    payment_id = first["session"]["payment_id"]
    # Replaying every event the provider sent changes nothing and runs no hook again.
    provider_session_id = first["session"]["url"].rsplit("/", 1)[1]
    await harness.client.post(f"/billing/fake/checkout/{provider_session_id}", data={"outcome": "succeeded"})
    for headers, body in list(harness.fake.sent_events):
        replay = await harness.client.post("/billing/webhooks/fake", content=body, headers=headers)
        assert replay.status_code == 200
        assert replay.json()["status"] == "duplicate"
    assert seen == [("payment.succeeded", payment_id)]
    payment = (await harness.client.get(f"/billing/payments/{payment_id}", headers=harness.auth())).json()
    assert payment["status"] == "succeeded"


async def test_submitting_a_finished_checkout_again_is_a_conflict(harness: Harness) -> None:
    # The fake's refusal used to surface as a 502 provider error: the payer is at fault, not a provider.
    paid = await harness.pay_one_off()
    provider_session_id = paid["session"]["url"].rsplit("/", 1)[1]
    page = f"/billing/fake/checkout/{provider_session_id}"
    for path, form in ((page, {"outcome": "succeeded"}), (f"{page}/authenticate", {"result": "succeeded"})):
        again = await harness.client.post(path, data=form)
        assert again.status_code == 409, again.text
        assert again.headers["content-type"].startswith("application/problem+json")
        assert again.json()["details"] == {"session": provider_session_id}


async def test_the_fake_pages_document_their_redirects_and_problems(harness: Harness) -> None:
    paths = harness.app.openapi()["paths"]
    for path in (
        "/billing/fake/checkout/{session_id}",
        "/billing/fake/checkout/{session_id}/authenticate",
    ):
        assert set(paths[path]["post"]["responses"]) == {"303", "404", "409", "422"}
        assert set(paths[path]["get"]["responses"]) == {"200", "404", "422"}
        assert list(paths[path]["get"]["responses"]["200"]["content"]) == ["text/html"]
    portal = "/billing/fake/portal/{customer_id}"
    assert set(paths[portal]["get"]["responses"]) == {"200", "404", "422"}
    for action in ("quantity", "cancel"):
        responses = paths[f"{portal}/subscriptions/{{sub_id}}/{action}"]["post"]["responses"]
        assert set(responses) == {"303", "404", "409", "422"}
