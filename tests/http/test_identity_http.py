"""Look-alike subjects and Idempotency-Keys are identities of their own, through HTTP.

On MariaDB's default collation a token for ``ALICE`` saw alice's payments and ``ORDER-77``
replayed ``order-77``'s response; every database must tell them apart (see ``tests/db/test_identity.py``).
"""

from __future__ import annotations

import pytest

from ..db.test_identity import LOOK_ALIKE_KEYS, LOOK_ALIKE_SUBJECTS
from .conftest import Harness
from .test_idempotency_http import BODY

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("subject", LOOK_ALIKE_SUBJECTS)
async def test_a_look_alike_subject_never_sees_alices_billing(harness: Harness, subject: str) -> None:
    paid = await harness.pay_one_off("alice")
    alice = (await harness.client.get("/billing/me", headers=harness.auth("alice"))).json()

    me = await harness.client.get("/billing/me", headers=harness.auth(subject))
    payments = await harness.client.get("/billing/payments", headers=harness.auth(subject))
    direct = await harness.client.get(
        f"/billing/payments/{paid['session']['payment_id']}", headers=harness.auth(subject)
    )

    assert me.status_code == 200, me.text
    assert me.json()["external_id"] == subject
    assert me.json()["id"] != alice["id"]
    assert payments.json()["items"] == []
    assert direct.status_code == 404
    alices = await harness.client.get("/billing/payments", headers=harness.auth("alice"))
    assert [p["id"] for p in alices.json()["items"]] == [paid["session"]["payment_id"]]


@pytest.mark.parametrize("look_alike", LOOK_ALIKE_KEYS)
async def test_a_look_alike_idempotency_key_is_never_replayed(harness: Harness, look_alike: str) -> None:
    first = await harness.client.post(
        "/billing/checkout-sessions", json=BODY, headers=harness.auth(**{"Idempotency-Key": "order-77"})
    )
    other = await harness.client.post(
        "/billing/checkout-sessions", json=BODY, headers=harness.auth(**{"Idempotency-Key": look_alike})
    )

    assert first.status_code == other.status_code == 201, other.text
    assert "Idempotent-Replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
    assert len(harness.fake.checkout_sessions) == 2


@pytest.mark.parametrize("subject", LOOK_ALIKE_SUBJECTS)
async def test_a_look_alike_subject_never_replays_alices_key(harness: Harness, subject: str) -> None:
    headers = {"Idempotency-Key": "order-77"}
    first = await harness.client.post(
        "/billing/checkout-sessions", json=BODY, headers=harness.auth("alice", **headers)
    )
    other = await harness.client.post(
        "/billing/checkout-sessions", json=BODY, headers=harness.auth(subject, **headers)
    )

    assert first.status_code == other.status_code == 201, other.text
    assert "Idempotent-Replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
