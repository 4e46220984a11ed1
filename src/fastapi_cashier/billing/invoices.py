"""Invoices mirrored from the provider, numbered gap-free when they are finalised."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from string import Formatter
from typing import Any

from ..db.base_repository import Page
from ..db.model_repositories import (
    InvoiceRepository,
    PaymentRepository,
    SequenceRepository,
    SubscriptionRepository,
)
from ..db.models import CheckoutSession, Invoice, InvoiceLine, Payment
from ..providers.base import InvoiceSnapshot, ProviderEvent, computes_tax
from ..statuses import INVOICE_MACHINE, ChangeCause, InvoiceStatus
from ._base import DomainService
from .transitions import record_creation, transition

logger = logging.getLogger("fastapi_cashier")

__all__ = ["INVOICE_NUMBER_SEQUENCE", "InvoiceService", "format_invoice_number", "invoice_number_sequence"]

INVOICE_NUMBER_SEQUENCE = "invoice"
#: Finalised invoices carry a number; drafts do not.
NUMBERED = frozenset(
    {InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID}
)


def format_invoice_number(value: int, pattern: str = "INV-{number:06d}", *, year: int | None = None) -> str:
    """The invoice number of sequence ``value`` in ``tax.invoice_number_format``.

    The default, ``INV-000042``, is sortable and wide enough for a million invoices before it grows.
    """
    return pattern.format(number=value, year=year if year is not None else 0)


def invoice_number_sequence(pattern: str, year: int) -> str:
    """The counter an invoice finalised in ``year`` takes its number from.

    A format that shows ``{year}`` numbers each year from 1 (``2026-00001`` follows ``2025-00913``),
    so each year has a counter of its own; any other format counts on forever.
    """
    if any(field == "year" for _, field, _, _ in Formatter().parse(pattern)):
        return f"{INVOICE_NUMBER_SEQUENCE}-{year}"
    return INVOICE_NUMBER_SEQUENCE


def _utc_year(moment: datetime) -> int:
    """The year of ``moment`` in UTC (a naive moment is UTC already, as the database returns it)."""
    return (moment.astimezone(UTC) if moment.tzinfo is not None else moment).year


class InvoiceService(DomainService):
    """Read invoices and mirror the provider's."""

    @property
    def _invoices(self) -> InvoiceRepository:
        return InvoiceRepository(session=self.session)

    async def get_for_customer(self, customer_id: uuid.UUID, invoice_id: uuid.UUID) -> Invoice:
        """The customer's own invoice with its lines; another customer's answers ``NotFoundError``."""
        return await self._invoices.get_for_customer(invoice_id, customer_id)

    async def list_for_customer(
        self, customer_id: uuid.UUID, *, limit: int = 20, cursor: str | None = None
    ) -> Page[Invoice]:
        """The customer's invoices, newest first."""
        return await self._invoices.paginate(Invoice.customer_id == customer_id, limit=limit, cursor=cursor)

    async def apply_snapshot(self, event: ProviderEvent, snapshot: InvoiceSnapshot) -> str | None:
        """Create or update the local copy of a provider invoice; the reason when ignored."""
        invoice = await self._invoices.first(
            Invoice.provider == event.provider,
            Invoice.provider_invoice_id == snapshot.provider_invoice_id,
            for_update=True,
        )
        if invoice is None:
            invoice = await self._create(event, snapshot)
            if invoice is None:
                return "no local customer or subscription matches this invoice"
        if snapshot.status is not invoice.status and not INVOICE_MACHINE.can(invoice.status, snapshot.status):
            return f"an invoice cannot move from {invoice.status.value} to {snapshot.status.value}"
        invoice.amount_paid = snapshot.amount_paid
        if snapshot.status in NUMBERED and invoice.number is None:
            await self._number(invoice, event.occurred_at)
        if snapshot.status is InvoiceStatus.PAID and invoice.paid_at is None:
            invoice.paid_at = event.occurred_at
        await transition(
            self.svc,
            "invoice",
            invoice,
            INVOICE_MACHINE,
            snapshot.status,
            cause=ChangeCause.WEBHOOK,
            provider_event_id=event.id,
            strict=False,
        )
        if snapshot.provider_payment_id:
            payment = await PaymentRepository(session=self.session).by_provider_id(
                event.provider, snapshot.provider_payment_id
            )
            if payment is not None and payment.invoice_id is None:
                payment.invoice_id = invoice.id
        await self._invoices.flush()
        return None

    async def _number(self, invoice: Invoice, moment: datetime) -> None:
        """Give a finalised invoice the next number of its year's (or the only) counter."""
        pattern, year = self.svc.settings.tax.invoice_number_format, _utc_year(moment)
        value = await SequenceRepository(session=self.session).next_value(
            invoice_number_sequence(pattern, year)
        )
        invoice.number = format_invoice_number(value, pattern, year=year)
        invoice.finalized_at = moment

    async def invoice_one_off(
        self,
        payment: Payment,
        checkout: CheckoutSession | None,
        *,
        paid_at: datetime,
        provider_event_id: str | None = None,
        cause: ChangeCause = ChangeCause.WEBHOOK,
        actor: str | None = None,
    ) -> Invoice | None:
        """The invoice of a paid one-off payment, numbered and paid at once; ``None`` when tax is off
        or the payment has one already.

        Written in the transaction that records the payment's success, so its number is taken
        from the same gap-free counter as the subscription invoices and is given back if that
        transaction rolls back. Its tax is the one quoted on the checkout session, whose gross
        was charged (:meth:`~fastapi_cashier.billing.tax.TaxService.apply_to_charge`); a payment
        without a checkout (a manual one an admin confirmed) is a gross amount taxed by the rules
        of the day it was paid.
        """
        if payment.invoice_id is not None or payment.subscription_id is not None or not self.svc.tax.enabled:
            return None
        provider = self.svc.providers.get(payment.provider)
        if provider is not None and computes_tax(provider):
            return None  # a merchant of record invoices the buyer itself
        invoice = Invoice(
            customer_id=payment.customer_id,
            status=InvoiceStatus.PAID,
            currency=payment.currency,
            subtotal=payment.amount,
            tax=0,
            total=payment.amount,
            amount_paid=payment.amount,
            provider=payment.provider,
            paid_at=paid_at,
            metadata_={"payment_id": str(payment.id)},
        )
        metadata = (checkout.metadata_ if checkout is not None else None) or {}
        quote = metadata.get("tax") if isinstance(metadata.get("tax"), dict) else None
        await self.svc.tax.apply_to_charge(
            invoice,
            gross=payment.amount,
            description=payment.description
            or (checkout.description if checkout is not None else None)
            or "Payment",
            quote=quote,
            on=paid_at,
        )
        await self._number(invoice, paid_at)
        await self._invoices.add(invoice)
        payment.invoice_id = invoice.id
        await record_creation(
            self.svc, "invoice", invoice, cause=cause, actor=actor, provider_event_id=provider_event_id
        )
        return invoice

    async def _create(self, event: ProviderEvent, snapshot: InvoiceSnapshot) -> Invoice | None:
        subscription = None
        if snapshot.provider_subscription_id:
            subscription = await SubscriptionRepository(session=self.session).by_provider_id(
                event.provider, snapshot.provider_subscription_id
            )
            if subscription is None:
                # Its first invoice overtook the subscription: wait rather than record it unlinked.
                self.await_creation(event, f"subscription {snapshot.provider_subscription_id}")
        customer_id = (
            subscription.customer_id
            if subscription is not None
            else _uuid(event.local_ids.get("customer_id"))
        )
        if customer_id is None:
            return None
        lines = [
            _line(position, line, snapshot.total.currency) for position, line in enumerate(snapshot.lines)
        ]
        subtotal = sum(line.amount for line in lines)
        invoice = Invoice(
            customer_id=customer_id,
            subscription_id=subscription.id if subscription is not None else None,
            status=InvoiceStatus.DRAFT,
            currency=snapshot.total.currency,
            subtotal=subtotal,
            tax=0,
            total=subtotal,
            amount_paid=0,
            period_start=snapshot.period_start,
            period_end=snapshot.period_end,
            provider=event.provider,
            provider_invoice_id=snapshot.provider_invoice_id,
            lines=lines,
        )
        provider = self.svc.providers.get(event.provider)
        provider_tax = None
        if provider is not None and computes_tax(provider):
            # A merchant of record: its total includes the tax it computed (what it says, or the rest).
            provider_tax = (
                snapshot.tax if snapshot.tax is not None else max(snapshot.total.amount - subtotal, 0)
            )
        await self.svc.tax.apply_to_invoice(
            invoice, on=snapshot.period_start or event.occurred_at, provider_tax=provider_tax
        )
        if invoice.total != snapshot.total.amount:
            # The provider charged another gross than the rules give today (a rate or a billing
            # profile changed since it was told the rate): keep what it charged beside it.
            logger.warning(
                "invoice %s of %s: the provider's total %s differs from the computed %s",
                snapshot.provider_invoice_id,
                event.provider,
                snapshot.total.amount,
                invoice.total,
            )
            invoice.metadata_ = {"provider_total": snapshot.total.amount}
        await self._invoices.add(invoice)
        await record_creation(
            self.svc, "invoice", invoice, cause=ChangeCause.WEBHOOK, provider_event_id=event.id
        )
        return invoice

    async def link_payment(self, payment: Payment, provider: str, provider_invoice_id: str | None) -> None:
        """Point a payment at the local copy of its invoice, when both exist."""
        if provider_invoice_id is None or payment.invoice_id is not None:
            return
        invoice = await self._invoices.first(
            Invoice.provider == provider, Invoice.provider_invoice_id == provider_invoice_id
        )
        if invoice is not None:
            payment.invoice_id = invoice.id


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _line(position: int, line: Mapping[str, Any], currency: str) -> InvoiceLine:
    return InvoiceLine(
        position=position,
        description=str(line.get("description") or "")[:500],
        plan_id=_uuid(line.get("plan_id")),
        quantity=int(line.get("quantity") or 0),
        unit_amount=int(line.get("unit_amount") or 0),
        amount=int(line.get("amount") or 0),
        currency=currency,
        proration=bool(line.get("proration")),
        period_start=line.get("period_start") or None,
        period_end=line.get("period_end") or None,
    )
