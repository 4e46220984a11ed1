"""Reading payments: the customer's own, the admin's view, filters and the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..db.base_repository import Page
from ..db.model_repositories import PaymentRepository
from ..db.models import Payment, Refund, StatusChange
from ..statuses import PaymentStatus
from ._base import DomainService

__all__ = ["PaymentFilters", "PaymentService"]


@dataclass(frozen=True, slots=True)
class PaymentFilters:
    """Filters of a payment listing; ``None`` means "any"."""

    status: PaymentStatus | None = None
    provider: str | None = None
    reference: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    customer_id: uuid.UUID | None = None

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """The filters as SQL conditions."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.status is not None:
            conditions.append(Payment.status == self.status)
        if self.provider is not None:
            conditions.append(Payment.provider == self.provider)
        if self.reference is not None:
            conditions.append(Payment.reference == self.reference)
        if self.created_after is not None:
            conditions.append(Payment.created_at >= self.created_after)
        if self.created_before is not None:
            conditions.append(Payment.created_at < self.created_before)
        if self.customer_id is not None:
            conditions.append(Payment.customer_id == self.customer_id)
        return conditions


class PaymentService(DomainService):
    """Payments as customers and admins read them."""

    @property
    def _payments(self) -> PaymentRepository:
        return PaymentRepository(session=self.session)

    async def get(self, payment_id: uuid.UUID) -> Payment:
        """Any payment (admin use)."""
        return await self._payments.get(payment_id)

    async def get_for_customer(self, customer_id: uuid.UUID, payment_id: uuid.UUID) -> Payment:
        """The customer's own payment; another customer's answers ``NotFoundError``."""
        return await self._payments.get_for_customer(payment_id, customer_id)

    async def list(
        self, filters: PaymentFilters, *, limit: int = 20, cursor: str | None = None
    ) -> Page[Payment]:
        """Newest first, keyset-paginated."""
        return await self._payments.paginate(*filters.conditions(), limit=limit, cursor=cursor)

    async def list_columns(
        self,
        filters: PaymentFilters,
        columns: Sequence[Any],
        *,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[sa.Row[Any]]:
        """:meth:`list` reading only ``columns`` of ``Payment`` (``id`` and ``created_at`` among
        them), as rows: the listing endpoints serialise them without building ORM objects."""
        return await self._payments.paginate_columns(
            columns, *filters.conditions(), limit=limit, cursor=cursor
        )

    async def audit_trail(self, payment: Payment) -> Sequence[StatusChange]:
        """Every status change of the payment and of its refunds, oldest first."""
        refund_ids = sa.select(Refund.id).where(Refund.payment_id == payment.id)
        stmt = (
            sa.select(StatusChange)
            .where(
                sa.or_(
                    sa.and_(StatusChange.entity_type == "payment", StatusChange.entity_id == payment.id),
                    sa.and_(StatusChange.entity_type == "refund", StatusChange.entity_id.in_(refund_ids)),
                )
            )
            .order_by(StatusChange.created_at, StatusChange.id)
        )
        return (await self.session.execute(stmt)).scalars().all()
