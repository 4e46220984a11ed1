"""``cancels_at_period_end_locally`` is provider-neutral: the fake, told to declare it instead of
its own cancel at period end, is treated as PayPal is (``tests/providers/test_paypal_period_end.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from fastapi_cashier.providers.base import Capability

from .conftest import Harness
from .test_subscriptions import create_plan, subscribe

pytestmark = pytest.mark.anyio


async def test_the_library_keeps_the_flag_and_cancels_the_fake_when_the_period_ends(harness: Harness) -> None:
    fake = harness.fake
    fake.capabilities = (fake.capabilities - {Capability.CANCEL_AT_PERIOD_END}) | {
        Capability.CANCELS_AT_PERIOD_END_LOCALLY
    }
    plan = await create_plan(harness)
    sub = await subscribe(harness, plan["id"])
    assert sub["status"] == "active"
    alice = harness.auth()
    path = f"/billing/subscriptions/{sub['id']}"
    ending = await harness.client.post(f"{path}/cancel", json={"at_period_end": True}, headers=alice)
    assert ending.status_code == 200, ending.text
    assert (ending.json()["status"], ending.json()["cancel_at_period_end"]) == ("active", True)
    [provider_sub] = fake.subscriptions.values()
    assert provider_sub.status.value == "active"  # the provider was not asked
    ends = datetime.fromisoformat(sub["current_period_end"])
    assert await harness.payments.cancel_due_subscriptions(at=ends - timedelta(seconds=1)) == []
    done = await harness.payments.cancel_due_subscriptions(at=ends + timedelta(seconds=1))
    assert [str(found) for found in done] == [sub["id"]]
    assert provider_sub.status.value == "canceled"
    after = (await harness.client.get(path, headers=alice)).json()
    assert (after["status"], after["cancel_at_period_end"]) == ("canceled", False)
    assert await harness.payments.cancel_due_subscriptions(at=ends + timedelta(days=2)) == []


async def test_a_provider_with_its_own_mode_is_asked_instead(harness: Harness) -> None:
    plan = await create_plan(harness)
    sub = await subscribe(harness, plan["id"])
    alice = harness.auth()
    ending = await harness.client.post(
        f"/billing/subscriptions/{sub['id']}/cancel", json={"at_period_end": True}, headers=alice
    )
    assert ending.status_code == 200, ending.text
    [provider_sub] = harness.fake.subscriptions.values()
    assert provider_sub.cancel_at_period_end is True  # the fake keeps it itself
    ends = datetime.fromisoformat(sub["current_period_end"])
    # Nothing for the library to do: the provider ends it on its own clock.
    assert await harness.payments.cancel_due_subscriptions(at=ends + timedelta(seconds=1)) == []
    assert provider_sub.status.value == "active"
