"""Calls to a provider, retried on faults that a retry with the same idempotency key may cure.

Every mutating request the library sends carries an idempotency key derived from the local
intent row (``refund-<refund id>``, ``checkout-<session id>``, ...). A timeout, a 5xx, a reset
connection or a rate limit (:attr:`~fastapi_cashier.errors.ProviderError.retriable`) may
have happened before or after the provider acted. Where the provider honours idempotency keys
(:attr:`~fastapi_cashier.providers.base.PaymentProvider.idempotency_keys`) the call is repeated
with the very same arguments: the provider either does it once or answers with what it did the
first time. Where it does not, a creating call (checkout, refund, usage) is settled first by
looking the object up by the local id the adapter stored on it
(:meth:`~fastapi_cashier.providers.base.ObjectLookup.lookup`), and resent only when the provider
has none. Either way nothing is created twice. The faults met on the way are kept in
:attr:`RetryingProvider.faults` so the caller can write them into the audit trail.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

from ..errors import ProviderError
from ..providers.base import (
    CatalogProvider,
    CheckoutCompleter,
    CheckoutProvider,
    CheckoutRequest,
    CheckoutResult,
    CheckoutSnapshot,
    CustomerRef,
    LookupKind,
    LookupResult,
    ObjectKind,
    ObjectLookup,
    PauseProvider,
    PaymentProvider,
    PlanRef,
    PortalProvider,
    PortalRequest,
    PortalResult,
    ProviderEvent,
    RefundProvider,
    RefundRequest,
    RefundResult,
    RefundSnapshot,
    Snapshot,
    SubscriptionChange,
    SubscriptionProvider,
    SubscriptionResult,
    UsageProvider,
    UsageReport,
    UsageSnapshot,
    WebhookReceiver,
)
from ..settings import ProviderCallSettings

__all__ = ["RetryingProvider"]

logger = logging.getLogger("fastapi_cashier")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class RetryingProvider:
    """Wraps an adapter: every part of the protocol, each call retried on retriable faults.

    Only the parts the adapter implements work; callers check the declared capabilities first
    (:func:`~fastapi_cashier.providers.base.require_capability`), so reaching a part the adapter
    lacks is a programming error and raises ``TypeError``.

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
        self.idempotency_keys = provider.idempotency_keys
        self.proration_behaviors = provider.proration_behaviors
        self._settings = settings
        self._sleep = sleep
        #: ``"<operation>: <error>"`` for every retriable fault met, in order.
        self.faults: list[str] = []

    def __getattr__(self, name: str) -> Any:
        # Anything else an adapter offers (its own helpers) goes straight through.
        return getattr(self.wrapped, name)

    def _missing(self, part: type) -> TypeError:
        return TypeError(f"provider {self.name!r} does not implement {part.__name__}")

    async def _call(
        self,
        operation: str,
        call: Callable[[], Awaitable[T]],
        *,
        settle: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run ``call``, retrying retriable faults; before a resend, ``settle`` (when the provider
        ignores idempotency keys) answers what the first attempt may already have created."""
        attempts = self._settings.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                if attempt > 1 and settle is not None and not self.idempotency_keys:
                    found = await settle()
                    if found is not None:
                        logger.info("%s %s had succeeded before the fault: found it", self.name, operation)
                        return found
                return await call()
            except ProviderError as exc:
                if not exc.retriable or attempt == attempts:
                    raise
                self.faults.append(f"{operation}: {exc.message}")
                delay = self._delay(attempt, exc)
                logger.warning(
                    "%s %s failed (attempt %d of %d): %s; retrying in %.2f s",
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

    async def _lookup(self, kind: LookupKind, local_id: str) -> LookupResult | None:
        part = self.wrapped
        if not isinstance(part, ObjectLookup):
            raise self._missing(ObjectLookup)
        return await part.lookup(kind, local_id)

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str | None:
        return await self._call(
            "create_customer", lambda: self.wrapped.create_customer(customer, idempotency_key=idempotency_key)
        )

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        async def settle() -> CheckoutResult | None:
            found = await self._lookup("checkout_session", str(request.session_id))
            if not isinstance(found, CheckoutSnapshot) or found.url is None:
                return None
            return CheckoutResult(
                provider_session_id=found.provider_session_id,
                url=found.url,
                expires_at=found.expires_at,
                provider_customer_id=found.provider_customer_id,
            )

        part = self.wrapped
        if not isinstance(part, CheckoutProvider):
            raise self._missing(CheckoutProvider)
        return await self._call("create_checkout", lambda: part.create_checkout(request), settle=settle)

    async def complete_checkout(self, provider_session_id: str, *, idempotency_key: str) -> CheckoutSnapshot:
        part = self.wrapped
        if not isinstance(part, CheckoutCompleter):
            raise self._missing(CheckoutCompleter)
        return await self._call(
            "complete_checkout",
            lambda: part.complete_checkout(provider_session_id, idempotency_key=idempotency_key),
        )

    async def refund(self, request: RefundRequest) -> RefundResult:
        async def settle() -> RefundResult | None:
            found = await self._lookup("refund", str(request.refund_id))
            if not isinstance(found, RefundSnapshot):
                return None
            return RefundResult(found.provider_refund_id, found.status, found.failure_message)

        part = self.wrapped
        if not isinstance(part, RefundProvider):
            raise self._missing(RefundProvider)
        return await self._call("refund", lambda: part.refund(request), settle=settle)

    async def update_subscription(self, change: SubscriptionChange) -> SubscriptionResult:
        part = self.wrapped
        if not isinstance(part, SubscriptionProvider):
            raise self._missing(SubscriptionProvider)
        return await self._call("update_subscription", lambda: part.update_subscription(change))

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        part = self.wrapped
        if not isinstance(part, SubscriptionProvider):
            raise self._missing(SubscriptionProvider)
        return await self._call(
            "cancel_subscription",
            lambda: part.cancel_subscription(
                provider_subscription_id, at_period_end=at_period_end, idempotency_key=idempotency_key
            ),
        )

    async def resume_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        part = self.wrapped
        if not isinstance(part, SubscriptionProvider):
            raise self._missing(SubscriptionProvider)
        return await self._call(
            "resume_subscription",
            lambda: part.resume_subscription(provider_subscription_id, idempotency_key=idempotency_key),
        )

    async def pause_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        part = self.wrapped
        if not isinstance(part, PauseProvider):
            raise self._missing(PauseProvider)
        return await self._call(
            "pause_subscription",
            lambda: part.pause_subscription(provider_subscription_id, idempotency_key=idempotency_key),
        )

    async def report_usage(self, report: UsageReport) -> None:
        async def settle() -> bool | None:
            found = await self._lookup("usage_record", report.idempotency_key)
            return True if isinstance(found, UsageSnapshot) else None

        part = self.wrapped
        if not isinstance(part, UsageProvider):
            raise self._missing(UsageProvider)
        usage: UsageProvider = part

        async def send() -> bool:
            await usage.report_usage(report)
            return True

        await self._call("report_usage", send, settle=settle)

    async def create_portal_session(self, request: PortalRequest) -> PortalResult:
        part = self.wrapped
        if not isinstance(part, PortalProvider):
            raise self._missing(PortalProvider)
        return await self._call("create_portal_session", lambda: part.create_portal_session(request))

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        part = self.wrapped
        if not isinstance(part, CatalogProvider):
            raise self._missing(CatalogProvider)
        return await self._call("sync_catalog", lambda: part.sync_catalog(plans))

    async def fetch(self, object_kind: ObjectKind, provider_id: str) -> Snapshot:
        part = self.wrapped
        if not isinstance(part, WebhookReceiver):
            raise self._missing(WebhookReceiver)
        return await self._call("fetch", lambda: part.fetch(object_kind, provider_id))

    async def lookup(self, object_kind: LookupKind, local_id: str) -> LookupResult | None:
        return await self._call("lookup", lambda: self._lookup(object_kind, local_id))

    async def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        part = self.wrapped
        if not isinstance(part, WebhookReceiver):
            raise self._missing(WebhookReceiver)
        return await part.verify_webhook(headers, body)

    async def parse_webhook(self, body: bytes) -> ProviderEvent:
        part = self.wrapped
        if not isinstance(part, WebhookReceiver):
            raise self._missing(WebhookReceiver)
        return await part.parse_webhook(body)
