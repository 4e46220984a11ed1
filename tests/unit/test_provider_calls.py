"""RetryingProvider: which faults are retried, how long it waits, and what it remembers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from fastapi_cashier.billing.provider_calls import RetryingProvider
from fastapi_cashier.errors import (
    InvalidProviderRequestError,
    PaymentDeclinedError,
    ProviderConnectionError,
    ProviderRateLimitError,
)
from fastapi_cashier.providers.base import CustomerRef, PaymentProvider
from fastapi_cashier.providers.fake import FakeProvider
from fastapi_cashier.settings import ProviderCallSettings

pytestmark = pytest.mark.anyio

CUSTOMER = CustomerRef(id=uuid.uuid4(), external_id="alice")


class Scripted:
    """Raises the scripted errors in turn, then answers; records the keys it was called with."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.keys: list[str] = []

    async def __call__(self, customer: CustomerRef, *, idempotency_key: str) -> str:
        self.keys.append(idempotency_key)
        if self.errors:
            raise self.errors.pop(0)
        return "cus_1"


def _wrapped(script: Scripted, **settings: Any) -> tuple[RetryingProvider, list[float]]:
    provider = FakeProvider(webhook_secret="s")
    provider.create_customer = script  # type: ignore[method-assign]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return RetryingProvider(provider, ProviderCallSettings(**settings), sleep=sleep), waits


def _reset() -> ProviderConnectionError:
    return ProviderConnectionError("connection reset", provider="fake")


async def test_retriable_faults_are_retried_with_the_same_key_and_doubling_waits() -> None:
    script = Scripted(_reset(), _reset(), _reset())
    provider, waits = _wrapped(script, max_attempts=4, backoff_seconds=0.5)
    assert await provider.create_customer(CUSTOMER, idempotency_key="k1") == "cus_1"
    assert script.keys == ["k1"] * 4
    assert waits == [0.5, 1.0, 2.0]
    assert provider.faults == ["create_customer: connection reset"] * 3


async def test_the_last_fault_is_raised_when_attempts_run_out() -> None:
    script = Scripted(_reset(), _reset(), _reset())
    provider, waits = _wrapped(script, max_attempts=2, backoff_seconds=1)
    with pytest.raises(ProviderConnectionError):
        await provider.create_customer(CUSTOMER, idempotency_key="k")
    assert len(script.keys) == 2
    assert waits == [1.0]


@pytest.mark.parametrize(
    "error",
    [
        InvalidProviderRequestError("bad", provider="fake"),
        PaymentDeclinedError("declined", provider="fake"),
    ],
)
async def test_refusals_are_never_retried(error: Exception) -> None:
    script = Scripted(error)
    provider, waits = _wrapped(script)
    with pytest.raises(type(error)):
        await provider.create_customer(CUSTOMER, idempotency_key="k")
    assert (script.keys, waits, provider.faults) == (["k"], [], [])


async def test_a_retry_after_hint_is_honoured_up_to_the_cap() -> None:
    hint = ProviderRateLimitError("slow down", provider="fake", details={"retry_after_seconds": 7})
    long_hint = ProviderRateLimitError("slow down", provider="fake", details={"retry_after_seconds": 900})
    script = Scripted(hint, long_hint)
    provider, waits = _wrapped(script, max_attempts=3, backoff_seconds=0.5, max_backoff_seconds=30)
    await provider.create_customer(CUSTOMER, idempotency_key="k")
    assert waits == [7.0, 30.0]


async def test_one_attempt_turns_retries_off_and_the_wrapper_keeps_the_protocol() -> None:
    script = Scripted(_reset())
    provider, waits = _wrapped(script, max_attempts=1)
    assert isinstance(provider, PaymentProvider)
    assert (provider.name, provider.capabilities) == ("fake", provider.wrapped.capabilities)
    with pytest.raises(ProviderConnectionError):
        await provider.create_customer(CUSTOMER, idempotency_key="k")
    assert waits == []
