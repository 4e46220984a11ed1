"""Stripe's errors, as its API answers them, become the library's errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from fastapi_cashier.errors import (
    AuthenticationRequiredError,
    InvalidProviderRequestError,
    PaymentDeclinedError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
)
from fastapi_cashier.providers.stripe import StripeProvider

from .contract import CUSTOMER, SECRET, Clock
from .stripe_stub import StripeError, StripeStub

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("failure", "error_type", "retriable", "code", "message"),
    [
        (
            StripeError(
                402,
                "Your card was declined.",
                type="card_error",
                code="card_declined",
                decline_code="lost_card",
            ),
            PaymentDeclinedError,
            False,
            "card_declined",
            "Your card was declined.",
        ),
        (
            StripeError(
                402, "This payment needs authentication.", type="card_error", code="authentication_required"
            ),
            AuthenticationRequiredError,
            False,
            "authentication_required",
            "needs authentication",
        ),
        (
            StripeError(
                402,
                "Declined.",
                type="card_error",
                code="card_declined",
                decline_code="authentication_required",
            ),
            AuthenticationRequiredError,
            False,
            "authentication_required",
            "Declined.",
        ),
        (
            StripeError(429, "Too many requests.", type="rate_limit_error"),
            ProviderRateLimitError,
            True,
            None,
            "Too many",
        ),
        (
            StripeError(400, "Keys for idempotent requests can only be used once.", type="idempotency_error"),
            InvalidProviderRequestError,
            False,
            "idempotency_error",
            "already used with other parameters",
        ),
        (
            StripeError(400, "Invalid email address", code="email_invalid", param="email"),
            InvalidProviderRequestError,
            False,
            "email_invalid",
            "Invalid email address",
        ),
        (
            StripeError(401, "Invalid API Key provided: sk_test_****stub", type="invalid_request_error"),
            ProviderError,
            False,
            "authentication_error",
            "PAYMENTS_STRIPE__API_KEY",
        ),
        (
            StripeError(
                403, "The provided key does not have access to customers", type="invalid_request_error"
            ),
            ProviderError,
            False,
            "permission_error",
            "restricted key",
        ),
        (
            StripeError(500, "An unknown error occurred", type="api_error"),
            ProviderConnectionError,
            True,
            None,
            "unknown",
        ),
        (
            StripeError(409, "Lock timeout", type="api_error", code="lock_timeout"),
            ProviderConnectionError,
            True,
            None,
            "Lock",
        ),
        (
            httpx.ConnectError("connection refused"),
            ProviderConnectionError,
            True,
            None,
            "could not reach Stripe",
        ),
        (httpx.ReadTimeout("timed out"), ProviderConnectionError, True, None, "ReadTimeout"),
    ],
    ids=[
        "card declined",
        "authentication required",
        "declined for authentication",
        "rate limited",
        "idempotency error",
        "invalid request",
        "bad api key",
        "restricted key",
        "server error",
        "lock conflict",
        "connection refused",
        "timeout",
    ],
)
async def test_stripe_errors_become_library_errors(
    stripe_provider: StripeProvider,
    stub: StripeStub,
    failure: StripeError | Exception,
    error_type: type[ProviderError],
    retriable: bool,
    code: str | None,
    message: str,
) -> None:
    stub.failures.append(failure)

    with pytest.raises(ProviderError) as raised:
        await stripe_provider.create_customer(CUSTOMER, idempotency_key="customer-errors")

    error = raised.value
    assert type(error) is error_type
    assert error.provider == "stripe"
    assert error.retriable is retriable
    if code is not None:
        assert error.provider_code == code
    assert message in error.message
    assert "sk_test_stub" not in str(error.details)


async def test_a_decline_code_is_kept(stripe_provider: StripeProvider, stub: StripeStub) -> None:
    stub.failures.append(
        StripeError(402, "Declined.", type="card_error", code="card_declined", decline_code="fraudulent")
    )

    with pytest.raises(PaymentDeclinedError) as raised:
        await stripe_provider.create_customer(CUSTOMER, idempotency_key="customer-decline")

    assert raised.value.details["decline_code"] == "fraudulent"
    assert raised.value.details["http_status"] == 402


@pytest.fixture
async def retrying_provider(stub: StripeStub, clock: Clock) -> AsyncIterator[StripeProvider]:
    async with httpx.AsyncClient(transport=stub.transport) as http_client:
        yield StripeProvider(
            api_key="sk_test_retry",
            webhook_secrets=[SECRET],
            http_client=http_client,
            max_network_retries=1,
            clock=clock,
        )


async def test_the_sdk_retries_a_server_error_with_the_same_idempotency_key(
    retrying_provider: StripeProvider, stub: StripeStub
) -> None:
    stub.failures.append(StripeError(503, "Service unavailable", type="api_error"))

    customer_id = await retrying_provider.create_customer(
        CUSTOMER, idempotency_key=f"customer-{uuid.uuid4()}"
    )

    first, second = stub.requests_to("POST", "/v1/customers")
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert customer_id.startswith("cus_")
