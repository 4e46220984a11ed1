"""The fake provider's hosted checkout: sessions, the Pay / Decline / 3-D Secure pages, and refunds.

:class:`HostedCheckoutMixin` is the part of :class:`~fastapi_cashier.providers.fake.provider.FakeProvider`
that a payer meets: a checkout session (a one-off payment, or the first period of a subscription)
is paid on a page the router serves, and a succeeded payment can be refunded. What a paid
subscription checkout creates is :mod:`~fastapi_cashier.providers.fake._billing`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from ...money import Money
from ...statuses import CheckoutSessionStatus, PaymentStatus, RefundStatus
from ..base import (
    Capability,
    CheckoutRequest,
    CheckoutResult,
    CustomerRef,
    EventType,
    RefundRequest,
    RefundResult,
)
from . import _pages as fake_pages
from .state import (
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    Emitted,
    FakeCheckoutSession,
    FakeCustomer,
    FakePayment,
    FakeRefund,
    HostedStep,
    check_plan,
    new_id,
    refused,
)
from .wire import LOCAL_ID_KEYS

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["CheckoutOutcome", "HostedCheckoutMixin"]

CheckoutOutcome = Literal["succeeded", "declined", "requires_action"]
"""What the payer chose on the hosted checkout page."""

_OUTCOMES: Final = frozenset({"succeeded", "declined", "requires_action"})

_T = TypeVar("_T")


class HostedCheckoutMixin:
    """Checkout sessions, their hosted pages and refunds (a part of ``FakeProvider``)."""

    customers: dict[str, FakeCustomer]
    checkout_sessions: dict[str, FakeCheckoutSession]
    payments: dict[str, FakePayment]
    refunds: dict[str, FakeRefund]

    if TYPE_CHECKING:  # provided by FakeProvider and SubscriptionBillingMixin

        def now(self) -> datetime: ...
        def _require(self, capability: Capability) -> None: ...
        def _get(self, store: Mapping[str, _T], kind: str, provider_id: str) -> _T: ...
        def _replay(self, method: str, key: str, params: object, result_type: type[_T]) -> _T | None: ...
        def _remember(self, method: str, key: str, params: object, result: object) -> None: ...
        def _add_customer(self, ref: CustomerRef, *, provider_customer_id: str | None) -> str: ...
        def _start_subscription(
            self, session: FakeCheckoutSession, payment: FakePayment | None, card: str
        ) -> Emitted: ...
        async def _emit(self, events: Sequence[tuple[EventType, dict[str, Any]]]) -> None: ...

    # ----------------------------------------------------------------------- protocol

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        """Create an open hosted checkout session for a one-off payment or a subscription.

        A subscription session is for ``request.plan`` x ``request.quantity``; its amount is what
        is due today (nothing during a trial). The subscription is created when the session is paid.

        Raises:
            InvalidProviderRequestError: A payment without a positive amount, a subscription
                without a valid recurring plan or with a quantity below 1, no ``return_base_url``
                (the hosted page is served by the router), an expiry not in the future, or a reused key.
        """
        replayed = self._replay("create_checkout", request.idempotency_key, request, CheckoutResult)
        if replayed is not None:
            return replayed
        self._require(Capability.CHECKOUT)
        if request.mode == "subscription":
            self._require(Capability.SUBSCRIPTIONS)
            if request.plan is None:
                raise refused("a subscription checkout needs a plan", field="plan")
            amount = check_plan(request.plan, request.quantity)
            if request.tax is not None:
                # What the first invoice charges: the price plus the VAT the library decided.
                amount = Money(request.tax.split(amount.amount).gross, amount.currency)
            if request.plan.trial_days > 0:
                amount = Money.zero(amount.currency)
        else:
            self._require(Capability.ONE_OFF_PAYMENT)
            if request.amount is None or not request.amount.is_positive:
                raise refused("a payment checkout needs a positive amount", field="amount")
            amount = request.amount
        if request.return_base_url is None:
            raise refused(
                "the fake provider's hosted checkout page is served by the router: "
                "pass return_base_url (the URL the router is mounted at); in host code open the "
                "service with payments.service(base_url=payments.base_url(request))",
                field="return_base_url",
            )
        now = self.now()
        if request.expires_at.tzinfo is None or request.expires_at <= now:
            raise refused("expires_at must be an aware datetime in the future", field="expires_at")
        customer_id = self._add_customer(
            request.customer, provider_customer_id=request.customer.provider_customer_id
        )
        local_ids = {"checkout_session_id": str(request.session_id), "customer_id": str(request.customer.id)}
        if request.reference is not None:
            local_ids["reference"] = request.reference
        plan = request.plan if request.mode == "subscription" else None
        session = FakeCheckoutSession(
            id=new_id("cs"),
            status=CheckoutSessionStatus.OPEN,
            amount=amount,
            description=request.description or (plan.name if plan is not None else None),
            success_url=request.success_url,
            cancel_url=request.cancel_url,
            expires_at=request.expires_at,
            customer=customer_id,
            metadata={**request.metadata, **local_ids},
            created=now,
            updated=now,
            mode=request.mode,
            plan=plan,
            quantity=request.quantity if plan is not None else 1,
            tax=request.tax if plan is not None else None,
        )
        session.url = f"{request.return_base_url.rstrip('/')}/fake/checkout/{session.id}"
        self.checkout_sessions[session.id] = session
        result = CheckoutResult(
            provider_session_id=session.id,
            url=session.url,
            expires_at=request.expires_at,
            provider_customer_id=customer_id,
        )
        self._remember("create_checkout", request.idempotency_key, request, result)
        return result

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund all or part of a succeeded payment and emit ``refund.succeeded``.

        Raises:
            InvalidProviderRequestError: Unknown payment, a payment not succeeded, another
                currency, a non-positive amount, more than is left, or a reused key.
        """
        replayed = self._replay("refund", request.idempotency_key, request, RefundResult)
        if replayed is not None:
            return replayed
        self._require(Capability.REFUNDS)
        payment = self._get(self.payments, "payment", request.provider_payment_id)
        if payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
            raise refused(
                f"payment {payment.id} is {payment.status.value}; only a succeeded payment can be refunded",
                code="payment_not_refundable",
            )
        if request.amount.currency != payment.amount.currency or not request.amount.is_positive:
            raise refused(
                f"a refund of payment {payment.id} must be a positive amount of {payment.amount.currency}",
                field="amount",
            )
        left = payment.amount.amount - payment.refunded_amount
        if request.amount.amount > left:
            raise refused(
                f"refund of {request.amount} exceeds the {Money(left, payment.amount.currency)} "
                f"left to refund on payment {payment.id}",
                code="amount_too_large",
                field="amount",
            )
        if request.amount != payment.amount:
            self._require(Capability.PARTIAL_REFUNDS)
        now = self.now()
        metadata = {key: value for key, value in payment.metadata.items() if key in LOCAL_ID_KEYS}
        refund = FakeRefund(
            id=new_id("re"),
            status=RefundStatus.SUCCEEDED,
            amount=request.amount,
            payment=payment.id,
            reason=request.reason,
            metadata={**metadata, "refund_id": str(request.refund_id)},
            created=now,
            updated=now,
        )
        self.refunds[refund.id] = refund
        payment.refunded_amount += request.amount.amount
        payment.status = (
            PaymentStatus.REFUNDED
            if payment.refunded_amount == payment.amount.amount
            else PaymentStatus.PARTIALLY_REFUNDED
        )
        payment.updated = now
        result = RefundResult(provider_refund_id=refund.id, status=RefundStatus.SUCCEEDED)
        self._remember("refund", request.idempotency_key, request, result)
        await self._emit([(EventType.REFUND_SUCCEEDED, refund.to_object())])
        return result

    # ----------------------------------------------------------------------- hosted pages

    def checkout_session(self, provider_session_id: str) -> FakeCheckoutSession:
        """The stored session.

        Raises:
            InvalidProviderRequestError: No such session.
        """
        return self._get(self.checkout_sessions, "checkout_session", provider_session_id)

    def render_checkout_page(self, provider_session_id: str, *, action_url: str) -> str:
        """The hosted checkout page, or a page without buttons once the session is closed.

        A subscription's page also shows the plan, its price per interval for the quantity, the
        quantity and the trial; the amount is what is due today.
        """
        session = self.checkout_session(provider_session_id)
        closed = self._closed_page(session)
        if closed is not None:
            return closed
        payment = self.payments.get(session.payment) if session.payment else None
        notice = None
        if payment is not None and payment.status is PaymentStatus.FAILED:
            notice = payment.failure_message
        elif payment is not None and payment.status is PaymentStatus.REQUIRES_ACTION:
            notice = "This payment is waiting for 3-D Secure authentication."
        return fake_pages.checkout_page(
            amount=session.amount.format(),
            currency=session.amount.currency,
            description=session.description if session.plan is None else None,
            action_url=action_url,
            notice=notice,
            details=fake_pages.subscription_terms(session.plan, session.quantity) if session.plan else (),
        )

    def render_authentication_page(self, provider_session_id: str, *, action_url: str) -> str:
        """The 3-D Secure challenge page, or a page without buttons when there is nothing to do."""
        session = self.checkout_session(provider_session_id)
        closed = self._closed_page(session)
        if closed is not None:
            return closed
        payment = self.payments.get(session.payment) if session.payment else None
        if payment is None or payment.status is not PaymentStatus.REQUIRES_ACTION:
            return fake_pages.closed_page(
                title="Nothing to authenticate",
                message="No payment of this checkout session is waiting for authentication.",
            )
        return fake_pages.authentication_page(
            amount=session.amount.format(),
            currency=session.amount.currency,
            description=session.description,
            action_url=action_url,
        )

    async def submit_checkout(self, provider_session_id: str, outcome: CheckoutOutcome) -> HostedStep:
        """Apply the payer's choice on the checkout page.

        A decline or a 3-D Secure step keeps the session open; paying again afterwards retries
        the same payment (``failed -> succeeded``), as a real payment intent does. A subscription
        checkout with nothing due today (a trial) needs no payment unless an attempt was made.

        Args:
            provider_session_id: The session being paid.
            outcome: ``"succeeded"`` (Pay), ``"declined"`` or ``"requires_action"`` (3-D Secure).

        Returns:
            The success URL, the cancel URL, or ``needs_authentication``.

        Raises:
            InvalidProviderRequestError: Unknown outcome or session, or the session is complete
                or expired.
        """
        if outcome not in _OUTCOMES:
            raise refused(f"unknown checkout outcome {outcome!r}", field="outcome")
        session = await self._payable_session(provider_session_id)
        if outcome == "succeeded":
            nothing_due = session.payment is None and session.amount.is_zero
            return await self._succeed(session, None if nothing_due else self._attempt(session), CARD_OK)
        payment = self._attempt(session)
        if outcome == "declined":
            return await self._fail(
                session, payment, CARD_DECLINED, "card_declined", "Your card was declined."
            )
        self._set_payment(payment, PaymentStatus.REQUIRES_ACTION, CARD_3DS)
        await self._emit([(EventType.PAYMENT_REQUIRES_ACTION, payment.to_object())])
        return HostedStep(provider_payment_id=payment.id, redirect_url=None, needs_authentication=True)

    async def authenticate(self, provider_session_id: str, succeeded: bool) -> HostedStep:
        """Finish the 3-D Secure challenge of the session's payment.

        Returns:
            The success URL when authenticated, else the cancel URL (the session stays open).

        Raises:
            InvalidProviderRequestError: No payment of the session is waiting for authentication.
        """
        session = await self._payable_session(provider_session_id)
        payment = self.payments.get(session.payment) if session.payment else None
        if payment is None or payment.status is not PaymentStatus.REQUIRES_ACTION:
            raise refused(
                f"no payment of checkout session {session.id} is waiting for authentication",
                code="payment_not_requiring_action",
            )
        if succeeded:
            return await self._succeed(session, payment, CARD_3DS)
        return await self._fail(
            session, payment, CARD_3DS, "authentication_failed", "The payment could not be authenticated."
        )

    async def expire_checkout(self, provider_session_id: str) -> None:
        """Expire an open session now, canceling its unfinished payment.

        Emits ``payment.canceled`` (when a payment was attempted) then ``checkout.expired``.
        """
        session = self.checkout_session(provider_session_id)
        if session.status is not CheckoutSessionStatus.OPEN:
            raise refused(f"checkout session {session.id} is {session.status.value}, not open")
        events: Emitted = []
        payment = self.payments.get(session.payment) if session.payment else None
        if payment is not None:
            self._set_payment(payment, PaymentStatus.CANCELED, payment.payment_method_summary)
            events.append((EventType.PAYMENT_CANCELED, payment.to_object()))
        session.status = CheckoutSessionStatus.EXPIRED
        session.updated = self.now()
        events.append((EventType.CHECKOUT_EXPIRED, session.to_object()))
        await self._emit(events)

    # ----------------------------------------------------------------------- internals

    def _closed_page(self, session: FakeCheckoutSession) -> str | None:
        if session.status is CheckoutSessionStatus.COMPLETE:
            return fake_pages.closed_page(
                title="Checkout complete", message="This checkout session has already been paid."
            )
        if session.status is CheckoutSessionStatus.EXPIRED or self.now() >= session.expires_at:
            return fake_pages.closed_page(
                title="Checkout expired",
                message="This checkout session has expired and can no longer be paid.",
            )
        return None

    async def _payable_session(self, provider_session_id: str) -> FakeCheckoutSession:
        """The session if it is open; expires it first when its time has run out."""
        session = self.checkout_session(provider_session_id)
        if session.status is CheckoutSessionStatus.OPEN and self.now() >= session.expires_at:
            await self.expire_checkout(session.id)
        if session.status is not CheckoutSessionStatus.OPEN:
            raise refused(
                f"checkout session {session.id} is {session.status.value} and cannot be paid",
                code="checkout_session_closed",
            )
        return session

    def _attempt(self, session: FakeCheckoutSession) -> FakePayment:
        """The session's payment: the one a previous attempt created, or a new one."""
        if session.payment is not None:
            return self.payments[session.payment]
        now = self.now()
        payment = FakePayment(
            id=new_id("pay"),
            status=PaymentStatus.PENDING,
            amount=session.amount,
            checkout_session=session.id,
            customer=session.customer,
            description=session.description,
            metadata=dict(session.metadata),
            created=now,
            updated=now,
        )
        self.payments[payment.id] = payment
        session.payment = payment.id
        session.updated = now
        return payment

    def _set_payment(
        self,
        payment: FakePayment,
        status: PaymentStatus,
        method_summary: str | None,
        failure: tuple[str, str] | None = None,
    ) -> None:
        payment.status = status
        payment.payment_method_summary = method_summary
        payment.failure_code, payment.failure_message = failure or (None, None)
        payment.updated = self.now()

    async def _succeed(
        self, session: FakeCheckoutSession, payment: FakePayment | None, card: str
    ) -> HostedStep:
        """Complete the session; a subscription session creates its subscription and first invoice."""
        events: Emitted
        if session.mode == "subscription":
            events = self._start_subscription(session, payment, card)
        else:
            assert payment is not None  # a payment session always has an amount due
            self._set_payment(payment, PaymentStatus.SUCCEEDED, card)
            events = [(EventType.PAYMENT_SUCCEEDED, payment.to_object())]
        session.status = CheckoutSessionStatus.COMPLETE
        session.updated = self.now()
        events.append((EventType.CHECKOUT_COMPLETED, session.to_object()))
        await self._emit(events)
        return HostedStep(
            provider_payment_id=payment.id if payment is not None else None,
            redirect_url=session.success_url,
            provider_subscription_id=session.subscription,
        )

    async def _fail(
        self, session: FakeCheckoutSession, payment: FakePayment, card: str, code: str, message: str
    ) -> HostedStep:
        self._set_payment(payment, PaymentStatus.FAILED, card, (code, message))
        await self._emit([(EventType.PAYMENT_FAILED, payment.to_object())])
        return HostedStep(provider_payment_id=payment.id, redirect_url=session.cancel_url)
