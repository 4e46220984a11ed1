"""The manual provider: cash, checks and bank transfers, recorded and confirmed by an admin.

Nothing leaves the process. Payments are created through the admin API
(``POST /admin/payments``) and their status is set by an admin
(``PATCH /admin/payments/{id}/status``); refunds are recorded as done at once, since the money
is handed back outside the system.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from ..errors import SignatureVerificationError, WebhookError
from ..statuses import RefundStatus
from .base import (
    Capability,
    CheckoutRequest,
    CheckoutResult,
    CustomerRef,
    ObjectKind,
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
    unsupported,
)

__all__ = ["ManualProvider"]


class ManualProvider:
    """Offline payments. Declares only refunds; everything else is refused as unsupported."""

    name = "manual"
    capabilities = frozenset({Capability.REFUNDS, Capability.PARTIAL_REFUNDS})

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str:
        """Manual payments need no account elsewhere: the local id serves."""
        return f"manual_{customer.id.hex}"

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        unsupported(self, Capability.CHECKOUT)

    async def refund(self, request: RefundRequest) -> RefundResult:
        """A refund handed over in person or by transfer is recorded as succeeded."""
        return RefundResult(
            provider_refund_id=f"manual_re_{request.refund_id.hex}", status=RefundStatus.SUCCEEDED
        )

    async def update_subscription(self, change: SubscriptionChange) -> SubscriptionResult:
        unsupported(self, Capability.SUBSCRIPTIONS)

    async def cancel_subscription(
        self, provider_subscription_id: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        unsupported(self, Capability.SUBSCRIPTIONS)

    async def resume_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        unsupported(self, Capability.SUBSCRIPTIONS)

    async def pause_subscription(
        self, provider_subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        unsupported(self, Capability.PAUSE)

    async def report_usage(self, report: UsageReport) -> None:
        unsupported(self, Capability.METERED_USAGE)

    async def create_portal_session(self, request: PortalRequest) -> PortalResult:
        unsupported(self, Capability.PORTAL)

    async def sync_catalog(self, plans: list[PlanRef]) -> Mapping[uuid.UUID, str]:
        unsupported(self, Capability.CATALOG_SYNC)

    async def fetch(self, object_kind: ObjectKind, provider_id: str) -> Snapshot:
        unsupported(self, "fetching objects")

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """The manual provider sends no webhooks, so every delivery is refused."""
        raise SignatureVerificationError("the manual provider does not receive webhooks")

    def parse_webhook(self, body: bytes) -> ProviderEvent:
        """The manual provider stores no webhook events, so there is nothing to parse."""
        raise WebhookError("the manual provider does not receive webhooks")
