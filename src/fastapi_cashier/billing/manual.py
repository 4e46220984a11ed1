"""Offline payments (cash, check, bank transfer) recorded and confirmed by an admin."""

from __future__ import annotations

import uuid

from ..currencies import normalize_currency
from ..db.model_repositories import CustomerRepository, PaymentRepository
from ..db.models import Payment
from ..errors import ConflictError, ValidationError
from ..statuses import PAYMENT_MACHINE, ChangeCause, ManualPaymentMethod, PaymentStatus
from ._base import DomainService, now
from .transitions import record_creation, transition

__all__ = ["ADMIN_SETTABLE_STATUSES", "ManualPaymentService"]

MANUAL = "manual"
#: What an admin may set a manual payment to; refunds go through the refund endpoint.
ADMIN_SETTABLE_STATUSES = frozenset(
    {PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELED}
)


class ManualPaymentService(DomainService):
    """Record offline payments and move them through their statuses."""

    async def record(
        self,
        *,
        customer_id: uuid.UUID,
        amount: int,
        currency: str,
        method: ManualPaymentMethod,
        reference: str | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> Payment:
        """Record a payment that is still to be confirmed (``pending``).

        Raises:
            ValidationError: manual provider off, bad amount or currency.
            NotFoundError: no such customer.
        """
        self.svc.provider(MANUAL)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValidationError("amount must be a positive integer number of minor units", field="amount")
        code = normalize_currency(currency)
        customer = await CustomerRepository(session=self.session).get(customer_id)
        payment_id = uuid.uuid4()
        payment = Payment(
            id=payment_id,
            customer_id=customer.id,
            provider=MANUAL,
            provider_payment_id=f"manual_{payment_id.hex}",
            status=PaymentStatus.PENDING,
            amount=amount,
            currency=code,
            method=ManualPaymentMethod(method).value,
            payment_method_summary=ManualPaymentMethod(method).value.replace("_", " "),
            reference=reference,
            description=description,
        )
        await PaymentRepository(session=self.session).add(payment)
        await record_creation(self.svc, "payment", payment, cause=ChangeCause.ADMIN, actor=actor)
        return payment

    async def set_status(
        self,
        payment_id: uuid.UUID,
        status: PaymentStatus,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> Payment:
        """Move a manual payment to ``status`` through the status machine.

        Raises:
            ConflictError: the payment is not a manual one (its provider owns its status).
            InvalidTransitionError: the machine does not allow the move.
            ValidationError: a status an admin may not set (refunds go through refunds).
        """
        payment = await PaymentRepository(session=self.session).get(payment_id, for_update=True)
        if payment.provider != MANUAL:
            raise ConflictError(
                f"the status of a {payment.provider} payment follows the provider; "
                "only manual payments can be set by an admin",
                details={"provider": payment.provider},
            )
        if status not in ADMIN_SETTABLE_STATUSES:
            allowed = ", ".join(sorted(s.value for s in ADMIN_SETTABLE_STATUSES))
            raise ValidationError(
                f"status must be one of {allowed}; refunds use the refund endpoint", field="status"
            )
        moved = await transition(
            self.svc,
            "payment",
            payment,
            PAYMENT_MACHINE,
            status,
            cause=ChangeCause.ADMIN,
            actor=actor,
            reason=reason,
        )
        if moved and payment.status is PaymentStatus.SUCCEEDED:
            # With tax on, the money received gets its numbered invoice, like a one-off checkout.
            await self.svc.invoices.invoice_one_off(
                payment, None, paid_at=now(), cause=ChangeCause.ADMIN, actor=actor
            )
        return payment
