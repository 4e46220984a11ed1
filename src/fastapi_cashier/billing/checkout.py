"""Hosted checkout sessions: the intent row is written first, then the provider is called."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa

from ..currencies import normalize_currency
from ..db.model_repositories import CheckoutSessionRepository, PaymentRepository
from ..db.models import CheckoutSession, Customer, Payment
from ..errors import ConflictError, NotFoundError, PaymentDeclinedError, ProviderError, ValidationError
from ..money import Money
from ..pricing import PriceSpec, storable_period_total
from ..providers.base import Capability, CheckoutRequest, PlanRef, computes_tax, require_capability
from ..statuses import PAYMENT_MACHINE, ChangeCause, CheckoutSessionStatus, PaymentStatus
from ._base import DomainService, now
from .transitions import record_creation, transition

__all__ = ["CHECKOUT_LIFETIME", "DECLINED", "CheckoutService", "with_query"]

logger = logging.getLogger("fastapi_cashier")

#: How long a hosted checkout stays payable.
CHECKOUT_LIFETIME = timedelta(hours=24)

#: The ``checkout`` query parameter added to the cancel URL of a checkout whose completion the
#: provider declined (:meth:`CheckoutService.finish`).
DECLINED = "declined"


class CheckoutService(DomainService):
    """Create and read checkout sessions."""

    @property
    def _sessions(self) -> CheckoutSessionRepository:
        return CheckoutSessionRepository(session=self.session)

    async def get_for_customer(self, customer_id: uuid.UUID, session_id: uuid.UUID) -> CheckoutSession:
        """The customer's own session; another customer's answers ``NotFoundError``."""
        return await self._sessions.get_for_customer(session_id, customer_id)

    async def create(
        self,
        customer: Customer,
        *,
        success_url: str,
        cancel_url: str,
        provider: str | None = None,
        amount: int | None = None,
        currency: str | None = None,
        description: str | None = None,
        plan_id: uuid.UUID | None = None,
        quantity: int = 1,
        reference: str | None = None,
    ) -> CheckoutSession:
        """Start a hosted checkout for a one-off ``amount`` (minor units) or a plan.

        The session row is committed before the provider is called and its id keys the call,
        so a retry never creates a second provider checkout and a webhook that arrives first
        finds the row.

        Raises:
            ValidationError: bad amount, currency or provider; a capability the provider lacks.
            ProviderError: the provider failed; the session is kept as ``expired``.
        """
        chosen = self.svc.provider(provider)
        require_capability(chosen, Capability.CHECKOUT)
        if (plan_id is None) == (amount is None):
            raise ValidationError(
                "give either plan_id (a subscription) or amount (a one-off payment), not both or neither",
                field="amount",
            )
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValidationError("quantity must be a positive integer", field="quantity")
        plan_ref: PlanRef | None = None
        money: Money | None
        if plan_id is not None:
            require_capability(chosen, Capability.SUBSCRIPTIONS)
            plan = await self.svc.subscriptions.active_plan(plan_id)
            plan_ref = await self.svc.catalog.plan_ref(plan, chosen)
            first_period = storable_period_total(
                PriceSpec.from_plan_ref(plan_ref), quantity=quantity, field="quantity"
            )
            money = first_period if first_period.amount > 0 else None
            currency_code = plan.currency
        else:
            require_capability(chosen, Capability.ONE_OFF_PAYMENT)
            money = _one_off_amount(amount, currency or self.svc.settings.default_currency)
            currency_code = money.currency
        # With tax on, the session carries net, tax and gross; a one-off payment charges the gross
        # (the same amount with tax-inclusive prices, the amount plus its tax otherwise), and a
        # subscription's provider is told the rate, so each invoice charges its gross.
        # A merchant of record (Lemon Squeezy) computes and adds the tax itself: nothing here.
        category = await self.svc.tax.plan_category(plan_id) if plan_id is not None else None
        own_tax = not computes_tax(chosen)
        tax = None
        if plan_ref is not None and own_tax:
            tax = await self.svc.tax.rate_ref(customer.id, category=category)
        quote = None
        if money is not None and own_tax:
            quote = await self.svc.tax.quote(customer.id, money.amount, category=category)
        if quote is not None and money is not None and plan_ref is None:
            money = Money(quote.gross, money.currency)

        row = CheckoutSession(
            customer_id=customer.id,
            provider=chosen.name,
            mode="subscription" if plan_ref is not None else "payment",
            status=CheckoutSessionStatus.OPEN,
            plan_id=plan_id,
            amount=money.amount if money is not None else None,
            currency=currency_code,
            quantity=quantity,
            description=description or (plan_ref.name if plan_ref is not None else None),
            reference=reference,
            success_url=success_url,
            cancel_url=cancel_url,
            expires_at=now() + CHECKOUT_LIFETIME,
            metadata_={"tax": quote.as_dict()} if quote is not None else {},
        )
        await self._sessions.add(row)
        await self.svc.commit()

        try:
            provider_customer_id = await self.svc.customers.provider_customer_id(customer, chosen)
            await self.svc.commit()
            assert row.expires_at is not None
            result = await chosen.create_checkout(
                CheckoutRequest(
                    session_id=row.id,
                    idempotency_key=f"checkout-{row.id}",
                    mode="subscription" if plan_ref is not None else "payment",
                    customer=self.svc.customers.reference(customer, provider_customer_id),
                    success_url=success_url,
                    cancel_url=cancel_url,
                    expires_at=row.expires_at,
                    amount=money if plan_ref is None else None,
                    description=row.description,
                    plan=plan_ref,
                    quantity=quantity,
                    reference=reference,
                    return_base_url=self.svc.base_url,
                    metadata=_metadata(row, customer, plan_ref),
                    tax=tax,
                )
            )
        except ProviderError as exc:
            await self.svc.rollback()
            failed = await self._sessions.get(row.id, for_update=True)
            if failed.status is CheckoutSessionStatus.OPEN and failed.provider_session_id is None:
                failed.status = CheckoutSessionStatus.EXPIRED
                failed.metadata_ = {**failed.metadata_, "provider_error": exc.message}
            await self.svc.commit()
            raise

        row = await self._sessions.get(row.id, for_update=True)
        row.provider_session_id = result.provider_session_id
        row.url = result.url
        if result.expires_at is not None:
            row.expires_at = result.expires_at
        await self._sessions.flush()
        await self.svc.commit()
        return row

    async def complete(
        self, session_id: uuid.UUID, *, cause: ChangeCause = ChangeCause.API
    ) -> CheckoutSession:
        """Run the provider's completion step of an approved checkout (PayPal: capture), once.

        Both paths call this: the payer's return to a provider route and the ``checkout.approved``
        event. A conditional ``UPDATE ... WHERE completion_started_at IS NULL`` claims the step in
        its own transaction, so of two paths arriving together exactly one calls the provider;
        the call runs outside any transaction. A refused completion (the payer's funding was
        declined, say) releases the claim so the payer may approve again; a declined one is recorded
        as the session's payment, ``failed`` (``cause`` says which path met it). The provider's
        events then record the payment as usual.

        Raises:
            NotFoundError: no such checkout session.
            UnsupportedCapabilityError: the provider has no completion step.
            ConflictError: the provider has not confirmed the session yet.
            ProviderError: the completion failed (the claim is released).
        """
        row = await self._sessions.get(session_id)
        provider = self.svc.provider(row.provider)
        require_capability(provider, Capability.CHECKOUT_COMPLETION)
        if row.provider_session_id is None:
            raise ConflictError("the provider has not confirmed this checkout session yet; try again shortly")
        provider_session_id = row.provider_session_id
        # One key per attempt the provider refused for good: it answers a repeated key with its
        # first answer, so the payer's next approval needs a new one; a fault that may have
        # completed it keeps the key, so a retry never completes twice.
        refused = int(row.metadata_.get(_REFUSED_COMPLETIONS, 0))
        key = f"checkout-complete-{session_id}" + (f"-{refused}" if refused else "")
        claimed = await self.session.execute(
            sa.update(CheckoutSession)
            .where(
                CheckoutSession.id == session_id,
                CheckoutSession.completion_started_at.is_(None),
                CheckoutSession.status == CheckoutSessionStatus.OPEN,
            )
            .values(completion_started_at=now())
            .execution_options(synchronize_session=False)
        )
        await self.svc.commit()
        if getattr(claimed, "rowcount", 0) != 1:
            logger.info("checkout session %s is completed, or being completed, by another path", session_id)
            return await self._sessions.get(session_id)
        try:
            await provider.complete_checkout(provider_session_id, idempotency_key=key)
        except ProviderError as exc:
            await self.svc.rollback()
            released = await self._sessions.get(session_id, for_update=True)
            released.completion_started_at = None
            if not exc.retriable:
                released.metadata_ = {**released.metadata_, _REFUSED_COMPLETIONS: refused + 1}
            await self._sessions.flush()
            if isinstance(exc, PaymentDeclinedError):
                await self._record_declined(session_id, exc, cause=cause)
            await self.svc.commit()
            raise
        return await self._sessions.get(session_id)

    async def finish(self, session_id: uuid.UUID, *, cause: ChangeCause = ChangeCause.API) -> str:
        """Complete an approved checkout for the payer who came back from the provider; where to
        send them next.

        That is the session's ``success_url``; when the provider declined the completion (the
        payer's funding source was refused: the payment is recorded ``failed``, nothing was
        captured, the session stays open for another try), its ``cancel_url`` with the query
        parameter ``checkout=declined`` added.

        Raises:
            Whatever :meth:`complete` raises, but ``PaymentDeclinedError``.
        """
        try:
            row = await self.complete(session_id, cause=cause)
        except PaymentDeclinedError:
            row = await self._sessions.get(session_id)
            return with_query(row.cancel_url or row.success_url or "/", checkout=DECLINED)
        if not row.success_url:
            raise NotFoundError(f"checkout session {session_id} has no success URL")
        return row.success_url

    async def _record_declined(
        self, session_id: uuid.UUID, exc: PaymentDeclinedError, *, cause: ChangeCause
    ) -> None:
        """Record the declined completion as the session's payment, ``failed`` with the provider's
        reason (a later successful attempt moves the same payment to ``succeeded``)."""
        row = await self._sessions.get(session_id, for_update=True)
        if row.amount is None or row.currency is None:
            return
        code = (exc.provider_code or exc.code.value)[:100]
        payments = PaymentRepository(session=self.session)
        payment = await payments.get_or_none(row.payment_id, for_update=True) if row.payment_id else None
        if payment is None:
            payment = Payment(
                customer_id=row.customer_id,
                provider=row.provider,
                checkout_session_id=row.id,
                status=PaymentStatus.FAILED,
                amount=row.amount,
                currency=row.currency,
                description=row.description,
                reference=row.reference,
                failure_code=code,
                failure_message=exc.message[:500],
            )
            await payments.add(payment)
            row.payment_id = payment.id
            await record_creation(
                self.svc, "payment", payment, cause=cause, reason="the provider declined it"
            )
            return
        payment.failure_code, payment.failure_message = code, exc.message[:500]
        await transition(
            self.svc,
            "payment",
            payment,
            PAYMENT_MACHINE,
            PaymentStatus.FAILED,
            cause=cause,
            reason="the provider declined it",
            strict=False,
        )


#: How many completion attempts the provider refused for good (kept in the session's metadata).
_REFUSED_COMPLETIONS = "refused_completions"


def _metadata(row: CheckoutSession, customer: Customer, plan: PlanRef | None) -> dict[str, str]:
    """Local ids the adapter stores on the provider object, so its events find these rows."""
    metadata = {"checkout_session_id": str(row.id), "customer_id": str(customer.id)}
    if plan is not None:
        metadata["plan_id"] = str(plan.id)
    return metadata


def _one_off_amount(amount: int | None, currency: str) -> Money:
    if amount is None or isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("amount must be an integer number of minor units", field="amount")
    if amount <= 0:
        raise ValidationError("amount must be greater than zero", field="amount")
    return Money(amount, normalize_currency(currency))


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query (replacing parameters of the same name)."""
    parts = urlsplit(url)
    query = [
        (key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in params
    ]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
