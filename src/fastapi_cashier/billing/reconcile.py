"""Compare local rows with what a provider reports, and optionally repair the drift.

Webhooks keep local state in step with a provider, but a provider may have dropped deliveries
for longer than it retries them, or an endpoint may have been misconfigured for a while.
:meth:`ReconcileService.run` re-reads every payment, refund and subscription of a provider that
is not in a final state (or every one, with ``everything``) and reports each field that differs.
With ``fix`` it applies the provider's state through the same path as a webhook (the status
machines, the ordering guard, the audit trail), as an event whose id starts with
``reconcile-``, so every repair is explained in ``status_changes``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..db.models import Payment, Refund, Subscription
from ..errors import NotFoundError, ProviderError
from ..providers.base import (
    Capability,
    ObjectKind,
    PaymentSnapshot,
    ProviderEvent,
    RefundSnapshot,
    Snapshot,
    SubscriptionSnapshot,
    require_capability,
)
from ..statuses import PaymentStatus, RefundStatus, SubscriptionStatus
from ._base import DomainService, now
from .provider_calls import RetryingProvider

__all__ = ["Drift", "ReconcileReport", "ReconcileService"]

logger = logging.getLogger("fastapi_cashier")

Progress = Callable[[int, int], None]

_SETTLED_PAYMENTS = (PaymentStatus.FAILED, PaymentStatus.CANCELED, PaymentStatus.REFUNDED)
_SETTLED_REFUNDS = (RefundStatus.SUCCEEDED, RefundStatus.FAILED, RefundStatus.CANCELED)
_SETTLED_SUBSCRIPTIONS = (SubscriptionStatus.EXPIRED,)


@dataclass(frozen=True, slots=True)
class Drift:
    """One field of one local row that differs from the provider.

    Attributes:
        kind: ``payment``, ``refund`` or ``subscription``.
        local_id: The local row's id.
        provider_id: The provider's id of the object.
        field: The field that differs, or ``"existence"`` when the provider has no such object.
        local: The local value, as text.
        remote: The provider's value, as text.
    """

    kind: ObjectKind
    local_id: uuid.UUID
    provider_id: str
    field: str
    local: str
    remote: str


@dataclass(slots=True)
class ReconcileReport:
    """What a run compared, found and repaired.

    Attributes:
        checked: Local rows compared with the provider.
        drift: Every difference found (before repairs).
        fixed: Ids of rows a repair changed (with ``fix``).
        unfixed: Rows that still differ, with why (a move the status machine refuses, an
            object the provider no longer has, an error while reading it).
    """

    checked: int = 0
    drift: list[Drift] = field(default_factory=list)
    fixed: list[uuid.UUID] = field(default_factory=list)
    unfixed: dict[uuid.UUID, str] = field(default_factory=dict)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(getattr(value, "value", value))


def _differences(row: Any, snapshot: Snapshot) -> list[tuple[str, str, str]]:
    """``(field, local, remote)`` for each compared field that differs."""
    pairs: list[tuple[str, Any, Any]]
    if isinstance(snapshot, PaymentSnapshot):
        pairs = [
            ("status", row.status, snapshot.status),
            ("amount", row.amount, snapshot.amount.amount),
            ("currency", row.currency, snapshot.amount.currency),
        ]
    elif isinstance(snapshot, RefundSnapshot):
        pairs = [("status", row.status, snapshot.status), ("amount", row.amount, snapshot.amount.amount)]
    elif isinstance(snapshot, SubscriptionSnapshot):
        pairs = [
            ("status", row.status, snapshot.status),
            ("quantity", row.quantity, snapshot.quantity),
            ("current_period_end", row.current_period_end, snapshot.current_period_end),
            ("cancel_at_period_end", row.cancel_at_period_end, snapshot.cancel_at_period_end),
        ]
    else:  # pragma: no cover - only the three kinds above are fetched
        pairs = []
    return [
        (name, _text(local), _text(remote)) for name, local, remote in pairs if _text(local) != _text(remote)
    ]


class ReconcileService(DomainService):
    """Report, and with ``fix`` repair, drift between local rows and a provider."""

    async def run(
        self,
        provider_name: str | None = None,
        *,
        fix: bool = False,
        everything: bool = False,
        on_progress: Progress | None = None,
    ) -> ReconcileReport:
        """Compare the provider's objects with the local rows that mirror them.

        Call it outside a transaction: each object is read from the provider with no lock
        held, and each repair commits on its own.

        Args:
            provider_name: An enabled provider; ``None`` for ``settings.default_provider``.
            fix: Apply the provider's state where it differs.
            everything: Also compare rows in a final state (refunded or failed payments, ...).
            on_progress: Called with ``(done, total)`` after each row.
        """
        provider = self.svc.provider(provider_name)
        require_capability(provider, Capability.WEBHOOKS)
        targets = await self._targets(provider.name, everything)
        await self.svc.commit()
        report = ReconcileReport()
        for index, (kind, local_id, provider_id) in enumerate(targets, start=1):
            await self._check(provider, kind, local_id, provider_id, fix=fix, report=report)
            if on_progress is not None:
                on_progress(index, len(targets))
        return report

    async def _targets(self, provider: str, everything: bool) -> Sequence[tuple[ObjectKind, uuid.UUID, str]]:
        queries: list[tuple[ObjectKind, Any, Any, Any, tuple[Any, ...]]] = [
            ("payment", Payment, Payment.provider_payment_id, Payment.status, _SETTLED_PAYMENTS),
            ("refund", Refund, Refund.provider_refund_id, Refund.status, _SETTLED_REFUNDS),
            (
                "subscription",
                Subscription,
                Subscription.provider_subscription_id,
                Subscription.status,
                _SETTLED_SUBSCRIPTIONS,
            ),
        ]
        targets: list[tuple[ObjectKind, uuid.UUID, str]] = []
        for kind, model, provider_id, status, settled in queries:
            stmt = sa.select(model.id, provider_id).where(
                model.provider == provider, provider_id.is_not(None)
            )
            if not everything:
                stmt = stmt.where(status.not_in(settled))
            rows = (await self.session.execute(stmt.order_by(model.created_at, model.id))).all()
            targets.extend((kind, row[0], row[1]) for row in rows)
        return targets

    async def _check(
        self,
        provider: RetryingProvider,
        kind: ObjectKind,
        local_id: uuid.UUID,
        provider_id: str,
        *,
        fix: bool,
        report: ReconcileReport,
    ) -> None:
        report.checked += 1
        try:
            snapshot = await provider.fetch(kind, provider_id)
        except (NotFoundError, ProviderError) as exc:
            missing = isinstance(exc, NotFoundError) or exc.code.value == "provider_invalid_request"
            if missing:
                report.drift.append(Drift(kind, local_id, provider_id, "existence", "present", "missing"))
            report.unfixed[local_id] = f"cannot read it from {provider.name}: {exc.message}"
            return
        model: Any = {"payment": Payment, "refund": Refund, "subscription": Subscription}[kind]
        row = await self.session.get(model, local_id)
        if row is None:
            return  # deleted meanwhile
        if isinstance(snapshot, SubscriptionSnapshot) and isinstance(row, Subscription):
            # Where the library keeps cancel_at_period_end itself, the row is the authority for it.
            snapshot = self.svc.subscriptions.with_local_cancel(row, snapshot)
        differences = _differences(row, snapshot)
        # The state just read is the newest there is, even when the provider's clock runs ahead
        # of ours: stamp the repair no earlier than what was applied, or the guard would skip it.
        occurred_at = max(now(), getattr(row, "provider_updated_at", None) or now())
        await self.svc.commit()
        if not differences:
            return
        report.drift.extend(Drift(kind, local_id, provider_id, *difference) for difference in differences)
        if not fix:
            return
        event = ProviderEvent(
            provider=provider.name,
            id=f"reconcile-{uuid.uuid4().hex[:16]}",
            type=f"{kind}.reconciled",
            occurred_at=occurred_at,
            object_kind=kind,
            object_id=provider_id,
            snapshot=snapshot,
            local_ids={f"{kind}_id": str(local_id)},
        )
        try:
            outcome = await self.svc.events.apply(event)
            await self.svc.commit()
        except Exception as exc:
            await self.svc.rollback()
            logger.exception("repairing %s %s from %s failed", kind, local_id, provider.name)
            report.unfixed[local_id] = f"repair failed: {exc}"
            return
        row = await self.session.get(model, local_id, populate_existing=True)
        remaining = _differences(row, snapshot) if row is not None else []
        await self.svc.commit()
        if outcome.status == "processed" and not remaining:
            report.fixed.append(local_id)
        else:
            report.unfixed[local_id] = outcome.reason or "the provider's state could not be applied"
