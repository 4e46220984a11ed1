"""Calls to a provider, retried on faults that a retry with the same idempotency key may cure.

Every mutating request the library sends carries an idempotency key derived from the local
intent row (``refund-<refund id>``, ``checkout-<session id>``, ...). A timeout, a 5xx, a reset
connection or a rate limit (:attr:`~fastapi_cashier.errors.ProviderError.retriable`) may
have happened before or after the provider acted, so the call is repeated with the very same
arguments: the provider either does it once or answers with what it did the first time. It is
never charged twice. The faults met on the way are kept in :attr:`RetryingProvider.faults` so
the caller can write them into the audit trail.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

from ..errors import ProviderError
from ..providers.base import (
    CheckoutRequest,
    CheckoutResult,
    CustomerRef,
    ObjectKind,
    PaymentProvider,
    PlanRef,
    PortalRequest,
    PortalResult,
    ProviderEvent,
    RefundRequest,
    RefundResult,
    Snapshot,
    SubscriptionChange,
    SubscriptionResult,
    UsageReport,
)
from ..settings import ProviderCallSettings

__all__ = ["RetryingProvider"]

logger = logging.getLogger("fastapi_cashier")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class RetryingProvider:
    """Wraps an adapter: the same protocol, each call retried on retriable faults.

    Args:
        provider: The adapter.
        settings: How many attempts and the base delay of the exponential backoff.
        sleep: What waits between attempts (tests pass a recorder).
    """

    def __init__(
        self, provider: PaymentProvider, settings: ProviderCallSettings, *, sleep: Sleep = anyio.sleep
    ):
        self.wrapped = provider
        self.name = provider.name
        self.capabilities = provider.capabilities
        self._settings = settings
        self._sleep = sleep
        #: ``"<operation>: <error>"`` for every retriable fault met, in order.
        self.faults: list[str] = []

    def __getattr__(self, name: str) -> Any:
        # Anything else an adapter offers (its own helpers, verify_webhook) goes straight through.
        return getattr(self.wrapped, name)

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        attempts = self._settings.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await call()
            except ProviderError as exc:
                if not exc.retriable or attempt == attempts:
                    raise
                self.faults.append(f"{operation}: {exc.message}")
                delay = self._delay(attempt, exc)
                logger.warning(
                    "%s %s failed (attempt %d of %d): %s; retrying in %.2f s with the same idempotency key",
                    self.name,
                    operation,
                    attempt,
                    attempts,
                    exc.message,
                    delay,
                )
                await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _delay(self, attempt: int, exc: ProviderError) -> float:
        delay: float = self._settings.backoff_seconds * 2.0 ** (attempt - 1)
        hinted = exc.details.get("retry_after_seconds")
        if isinstance(hinted, int | float) and not isinstance(hinted, bool) and hinted > delay:
            delay = float(hinted)
        return min(delay, self._settings.max_backoff_seconds)

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str:
        return await self._call(
            "create_customer", lambda: self.wrapped.create_customer(customer, idempotency_key=idempotency_key)
        )

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        return await self._call("create_checkout", lambda: self.wrapped.create_checkout(request))

    async def refund(self, request: RefundRequest) -> RefundResult:
        return await self._call("refund", lambda: self.wrapped.refund(request))

    async def update_subscription(self, change: SubscriptionChange) -> SubscriptionResult:
        return await self._call("update_subscription", lambda: self.wrapped.update_subscription(change))

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        return await self._call(
            "cancel_subscription",
            lambda: self.wrapped.cancel_subscription(
                provider_subscription_id, at_period_end=at_period_end, idempotency_key=idempotency_key
            ),
        )

    async def resume_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        return await self._call(
            "resume_subscription",
            lambda: self.wrapped.resume_subscription(
                provider_subscription_id, idempotency_key=idempotency_key
            ),
        )

    async def pause_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        return await self._call(
            "pause_subscription",
            lambda: self.wrapped.pause_subscription(
                provider_subscription_id, idempotency_key=idempotency_key
            ),
        )

    async def report_usage(self, report: UsageReport) -> None:
        await self._call("report_usage", lambda: self.wrapped.report_usage(report))

    async def create_portal_session(self, request: PortalRequest) -> PortalResult:
        return await self._call("create_portal_session", lambda: self.wrapped.create_portal_session(request))

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        return await self._call("sync_catalog", lambda: self.wrapped.sync_catalog(plans))

    async def fetch(self, object_kind: ObjectKind, provider_id: str) -> Snapshot:
        return await self._call("fetch", lambda: self.wrapped.fetch(object_kind, provider_id))

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        return self.wrapped.verify_webhook(headers, body)

    def parse_webhook(self, body: bytes) -> ProviderEvent:
        return self.wrapped.parse_webhook(body)
