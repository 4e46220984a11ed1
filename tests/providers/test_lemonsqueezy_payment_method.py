"""``GET /subscriptions/{id}/update-payment-method``: Lemon Squeezy's signed link, for the owner only."""

from __future__ import annotations

import pytest

from ..http.conftest import Harness, harness  # noqa: F401 - the fixture
from ..http.test_subscriptions import create_plan, subscribe
from .test_lemonsqueezy_router import LemonHost, lemon, link_plans  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio, pytest.mark.db]


async def test_the_subscriber_gets_the_subscriptions_update_payment_method_link(
    lemon: LemonHost,  # noqa: F811
) -> None:
    plans = await link_plans(lemon)
    session = await lemon.checkout(plan_id=plans["Seats"], quantity=1)
    await lemon.pay(session["url"])
    await lemon.server.flush()
    (subscription,) = (await lemon.get("/subscriptions"))["items"]
    (provider_id,) = lemon.server.subscriptions
    path = f"/billing/subscriptions/{subscription['id']}/update-payment-method"

    own = await lemon.client.get(path, headers=lemon.auth("alice"))
    stranger = await lemon.client.get(path, headers=lemon.auth("mallory"))
    anonymous = await lemon.client.get(path)

    assert own.status_code == 200, own.text
    assert own.json() == {"url": lemon.server.subscriptions[provider_id]["urls"]["update_payment_method"]}
    assert stranger.status_code == 404, stranger.text
    assert stranger.json()["code"] == "not_found"
    assert "url" not in stranger.json()
    assert anonymous.status_code == 401, anonymous.text
    named = lemon.harness.app.url_path_for(
        "payments:update_payment_method", subscription_id=subscription["id"]
    )
    assert named == path


async def test_an_ended_subscription_has_no_payment_method_to_update(lemon: LemonHost) -> None:  # noqa: F811
    plans = await link_plans(lemon)
    session = await lemon.checkout(plan_id=plans["Seats"], quantity=1)
    await lemon.pay(session["url"])
    await lemon.server.flush()
    (subscription,) = (await lemon.get("/subscriptions"))["items"]
    (provider_id,) = lemon.server.subscriptions
    cancelled = await lemon.post(f"/subscriptions/{subscription['id']}/cancel", {"at_period_end": True})
    assert cancelled.status_code == 200, cancelled.text
    await lemon.server.renew(provider_id)
    await lemon.server.flush()
    assert (await lemon.get(f"/subscriptions/{subscription['id']}"))["status"] == "expired"
    calls = len(lemon.server.requests)

    answer = await lemon.client.get(
        f"/billing/subscriptions/{subscription['id']}/update-payment-method", headers=lemon.auth()
    )

    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert len(lemon.server.requests) == calls


async def test_a_provider_without_the_link_answers_a_clear_422(harness: Harness) -> None:  # noqa: F811
    plan = await create_plan(harness)
    subscription = await subscribe(harness, plan["id"])

    answer = await harness.client.get(
        f"/billing/subscriptions/{subscription['id']}/update-payment-method", headers=harness.auth()
    )

    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "unsupported_capability"
    assert "update_payment_method" in problem["detail"]
    assert problem["details"]["provider"] == "fake"
    assert problem["details"]["capability"] == "update_payment_method"
