"""The manual provider: cash, checks and bank transfers, recorded and confirmed by an admin.

Nothing leaves the process. Payments are created through the admin API
(``POST /admin/payments``) and their status is set by an admin
(``PATCH /admin/payments/{id}/status``); refunds are recorded as done at once, since the money
is handed back outside the system. It implements the protocol's core and the refunds part only:
no checkout, no subscriptions, no webhooks.
"""

from __future__ import annotations

from ..statuses import ProrationBehavior, RefundStatus
from .base import Capability, CustomerRef, RefundRequest, RefundResult

__all__ = ["ManualProvider"]


class ManualProvider:
    """Offline payments: the core and refunds."""

    name = "manual"
    capabilities = frozenset({Capability.REFUNDS, Capability.PARTIAL_REFUNDS})
    #: Nothing is sent anywhere, so a repeated call cannot create anything twice.
    idempotency_keys = True
    proration_behaviors: frozenset[ProrationBehavior] = frozenset()

    async def create_customer(self, customer: CustomerRef, *, idempotency_key: str) -> str | None:
        """Manual payments need no account elsewhere: there is no provider customer."""
        return None

    async def refund(self, request: RefundRequest) -> RefundResult:
        """A refund handed over in person or by transfer is recorded as succeeded."""
        return RefundResult(
            provider_refund_id=f"manual_re_{request.refund_id.hex}", status=RefundStatus.SUCCEEDED
        )
