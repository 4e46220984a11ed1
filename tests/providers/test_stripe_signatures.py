"""``Stripe-Signature`` verification: every secret tried, tolerance both ways, fail closed.

Deliveries are signed with the SDK's own helper (``stripe.WebhookSignature``), so the adapter is
checked against Stripe's definition of a signature, not against itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import stripe

from fastapi_cashier.errors import ConfigurationError, SignatureVerificationError, WebhookError
from fastapi_cashier.providers.stripe import SIGNATURE_HEADER, StripeProvider

pytestmark = pytest.mark.anyio

CURRENT = "whsec_current_secret"
PREVIOUS = "whsec_previous_secret"
NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
UNIX = int(NOW.timestamp())
BODY = json.dumps(
    {
        "id": "evt_sig_1",
        "object": "event",
        "type": "customer.subscription.deleted",
        "created": UNIX - 5,
        "data": {
            "object": {
                "id": "sub_1",
                "object": "subscription",
                "status": "canceled",
                "customer": "cus_1",
                "items": {"object": "list", "data": []},
                "current_period_start": UNIX - 86400,
                "current_period_end": UNIX + 86400,
                "metadata": {},
            }
        },
    },
    indent=2,
).encode()


def signature(body: bytes = BODY, *, secret: str = CURRENT, at: int = UNIX) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=at))


@pytest.fixture
async def provider() -> AsyncIterator[StripeProvider]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(500))) as http:
        yield StripeProvider(
            api_key="sk_test_signatures",
            webhook_secrets=[CURRENT, PREVIOUS],
            tolerance_seconds=300,
            http_client=http,
            clock=lambda: NOW,
        )


async def test_a_delivery_signed_with_the_current_secret_is_accepted(provider: StripeProvider) -> None:
    event = await provider.verify_webhook({SIGNATURE_HEADER: signature()}, BODY)

    assert (event.id, event.type, event.object_id) == ("evt_sig_1", "subscription.canceled", "sub_1")


async def test_a_delivery_signed_with_a_rotated_secret_is_accepted(provider: StripeProvider) -> None:
    assert (
        await provider.verify_webhook({SIGNATURE_HEADER: signature(secret=PREVIOUS)}, BODY)
    ).id == "evt_sig_1"


async def test_the_header_name_is_case_insensitive(provider: StripeProvider) -> None:
    assert (await provider.verify_webhook({"stripe-signature": signature()}, BODY)).id == "evt_sig_1"


async def test_one_matching_signature_among_several_is_enough(provider: StripeProvider) -> None:
    # During a roll in the Dashboard Stripe signs with both endpoint secrets.
    other = signature(secret="whsec_not_ours").split(",v1=")[1]
    header = f"{signature()},v1={other},v0=ignored"

    assert (await provider.verify_webhook({SIGNATURE_HEADER: header}, BODY)).id == "evt_sig_1"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({}, BODY, "missing"),
        ({SIGNATURE_HEADER: ""}, BODY, "malformed"),
        ({SIGNATURE_HEADER: "v1=abc"}, BODY, "exactly one t="),
        ({SIGNATURE_HEADER: f"t={UNIX},t={UNIX},v1=abc"}, BODY, "exactly one t="),
        ({SIGNATURE_HEADER: f"t={UNIX}"}, BODY, "no v1 signature"),
        ({SIGNATURE_HEADER: "t=12ab,v1=00"}, BODY, "not a unix time"),
        ({SIGNATURE_HEADER: signature(secret="whsec_wrong")}, BODY, "no v1 signature in the"),
        ({SIGNATURE_HEADER: signature()}, BODY.replace(b"canceled", b"active"), "no v1 signature in the"),
        ({SIGNATURE_HEADER: signature()}, BODY + b"\n", "no v1 signature in the"),
        ({SIGNATURE_HEADER: signature(at=UNIX - 301)}, BODY, "301 seconds old"),
        ({SIGNATURE_HEADER: signature(at=UNIX + 301)}, BODY, "301 seconds in the future"),
        ({SIGNATURE_HEADER: signature().replace("v1=", "v0=")}, BODY, "no v1 signature"),
        ({SIGNATURE_HEADER: signature(), "STRIPE-SIGNATURE": signature(secret=PREVIOUS)}, BODY, "several"),
    ],
    ids=[
        "missing",
        "empty",
        "no timestamp",
        "two timestamps",
        "no signature",
        "timestamp not a number",
        "wrong secret",
        "tampered body",
        "appended body",
        "stale",
        "future",
        "only the test-mode scheme",
        "two different headers",
    ],
)
async def test_bad_deliveries_are_refused(
    provider: StripeProvider, headers: dict[str, str], body: bytes, reason: str
) -> None:
    with pytest.raises(SignatureVerificationError, match=reason):
        await provider.verify_webhook(headers, body)


async def test_the_edge_of_the_tolerance_is_accepted(provider: StripeProvider) -> None:
    assert (
        await provider.verify_webhook({SIGNATURE_HEADER: signature(at=UNIX - 300)}, BODY)
    ).id == "evt_sig_1"


async def test_the_signature_is_checked_before_the_body_is_read(provider: StripeProvider) -> None:
    garbage = b"not json at all"
    with pytest.raises(SignatureVerificationError):
        await provider.verify_webhook({SIGNATURE_HEADER: signature(garbage, secret="whsec_wrong")}, garbage)
    # Correctly signed garbage passes the signature and is then refused as a body.
    with pytest.raises(WebhookError, match="not valid JSON"):
        await provider.verify_webhook({SIGNATURE_HEADER: signature(garbage)}, garbage)


async def test_the_tolerance_follows_the_clock() -> None:
    moments = [NOW]
    async with httpx.AsyncClient() as http:
        provider = StripeProvider(
            api_key="sk_test_clock", webhook_secrets=[CURRENT], http_client=http, clock=lambda: moments[-1]
        )
        await provider.verify_webhook({SIGNATURE_HEADER: signature()}, BODY)
        moments.append(NOW + timedelta(minutes=6))
        with pytest.raises(SignatureVerificationError, match="360 seconds old"):
            await provider.verify_webhook({SIGNATURE_HEADER: signature()}, BODY)


@pytest.mark.parametrize("secrets", [[], [""], [CURRENT, ""]])
async def test_a_provider_without_a_usable_secret_is_refused(secrets: list[str]) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigurationError, match="webhook secret"):
            StripeProvider(api_key="sk_test_x", webhook_secrets=secrets, http_client=http)
