"""``PaymentsService``: the unit of work host code and the router share.

::

    async with payments.service() as svc:
        session = await svc.checkout.create(customer, amount=1500, currency="EUR", ...)

Leaving the block commits (and then runs the host's hooks); an exception rolls back. Operations
that call a provider commit their intent row first and call the provider outside any transaction,
so no row lock is held across the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..errors import ValidationError
from ..providers.base import PaymentProvider
from ..settings import PaymentsSettings
from .hooks import DomainEvent, HookRegistry
from .provider_calls import RetryingProvider

if TYPE_CHECKING:
    from .catalog import CatalogService
    from .checkout import CheckoutService
    from .credits import CreditService
    from .customers import CustomerService
    from .entitlements import EntitlementService
    from .events import EventApplier
    from .invoices import InvoiceService
    from .manual import ManualPaymentService
    from .payments import PaymentService
    from .period_end import PeriodEndService
    from .previews import PricingService
    from .ratelimits import RateLimitService
    from .reconcile import ReconcileService
    from .refunds import RefundService
    from .reports import ReportService
    from .subscriptions import SubscriptionService
    from .tax import TaxService
    from .tax_ids import TaxIdService

__all__ = ["PaymentsService"]


class PaymentsService:
    """The domain layer over one database session.

    Attributes:
        customers: Customers and billing profiles.
        catalog: Products, plans and their sync to providers.
        checkout: Hosted checkout sessions.
        payments: Reading payments and their audit trail.
        refunds: Refunds.
        manual: Offline payments recorded by an admin.
        reports: Totals for the admin summary.
        pricing: Price previews (``await svc.pricing.preview(plan, quantity=3)``).
        subscriptions: The subscription lifecycle.
        period_end: Cancels at period end the library carries out itself (PayPal).
        invoices: Invoices mirrored from providers.
        events: Applying verified provider events (the webhook inbox calls this).
        entitlements: Which plans, features and limits a customer's subscriptions give them.
        rate_limits: Fixed-window request counters shared by every process through the database.
        credits: Credit balances and their ledger.
        reconcile: Report and repair drift between local rows and a provider.
        tax: The VAT of a customer's purchases and invoices.
        tax_ids: VIES checks of the customers' VAT numbers.
    """

    def __init__(
        self,
        session: AsyncSession,
        *,
        settings: PaymentsSettings,
        providers: Mapping[str, PaymentProvider],
        hooks: HookRegistry | None = None,
        base_url: str | None = None,
        session_factory: Callable[[], AsyncSession] | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.providers = providers
        self.hooks = hooks or HookRegistry()
        self.base_url = base_url
        self._session_factory = session_factory
        self._pending: list[DomainEvent] = []

    # The domain services are built on first use: most units of work need one or two of them.

    @cached_property
    def customers(self) -> CustomerService:
        from .customers import CustomerService

        return CustomerService(self)

    @cached_property
    def catalog(self) -> CatalogService:
        from .catalog import CatalogService

        return CatalogService(self)

    @cached_property
    def checkout(self) -> CheckoutService:
        from .checkout import CheckoutService

        return CheckoutService(self)

    @cached_property
    def payments(self) -> PaymentService:
        from .payments import PaymentService

        return PaymentService(self)

    @cached_property
    def refunds(self) -> RefundService:
        from .refunds import RefundService

        return RefundService(self)

    @cached_property
    def manual(self) -> ManualPaymentService:
        from .manual import ManualPaymentService

        return ManualPaymentService(self)

    @cached_property
    def period_end(self) -> PeriodEndService:
        from .period_end import PeriodEndService

        return PeriodEndService(self)

    @cached_property
    def reports(self) -> ReportService:
        from .reports import ReportService

        return ReportService(self)

    @cached_property
    def pricing(self) -> PricingService:
        from .previews import PricingService

        return PricingService(self)

    @cached_property
    def subscriptions(self) -> SubscriptionService:
        from .subscriptions import SubscriptionService

        return SubscriptionService(self)

    @cached_property
    def invoices(self) -> InvoiceService:
        from .invoices import InvoiceService

        return InvoiceService(self)

    @cached_property
    def events(self) -> EventApplier:
        from .events import EventApplier

        return EventApplier(self)

    @cached_property
    def entitlements(self) -> EntitlementService:
        from .entitlements import EntitlementService

        return EntitlementService(self)

    @cached_property
    def rate_limits(self) -> RateLimitService:
        from .ratelimits import RateLimitService

        return RateLimitService(self)

    @cached_property
    def credits(self) -> CreditService:
        from .credits import CreditService

        return CreditService(self)

    @cached_property
    def reconcile(self) -> ReconcileService:
        from .reconcile import ReconcileService

        return ReconcileService(self)

    @cached_property
    def tax(self) -> TaxService:
        from .tax import TaxService

        return TaxService(self)

    @cached_property
    def tax_ids(self) -> TaxIdService:
        from .tax_ids import TaxIdService

        return TaxIdService(self)

    def provider(self, name: str | None) -> RetryingProvider:
        """The enabled provider called ``name`` (``None``: the default provider)."""
        chosen = name or self.settings.default_provider
        if chosen is None:
            enabled = ", ".join(sorted(self.providers)) or "none"
            raise ValidationError(
                "no provider given and no default provider is configured: send provider (enabled: "
                f"{enabled}) or set default_provider (PAYMENTS_DEFAULT_PROVIDER)",
                field="provider",
            )
        provider = self.providers.get(chosen)
        if provider is None:
            raise ValidationError(
                f"provider {chosen!r} is not enabled; enabled: {', '.join(sorted(self.providers)) or 'none'}",
                field="provider",
            )
        # Each operation gets its own wrapper, so its faults can go into its audit trail.
        return RetryingProvider(provider, self.settings.provider_calls)

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[PaymentsService]:
        """A unit of work of its own beside this one: a new session and transaction on the same
        database, committed (then its hooks run) on a clean exit and rolled back on an error.

        Operations whose steps must each be committed (a refund: reserve, call the provider,
        settle) run them in units of their own, so they never commit, roll back or flush the
        session of the unit of work they were called from.
        """
        factory = self._session_factory or async_sessionmaker(self.session.bind, expire_on_commit=False)
        async with factory() as session:
            unit = PaymentsService(
                session,
                settings=self.settings,
                providers=self.providers,
                hooks=self.hooks,
                base_url=self.base_url,
                session_factory=factory,
            )
            try:
                yield unit
            except BaseException:
                await unit.rollback()
                raise
            await unit.commit()

    def queue_event(self, event: DomainEvent) -> None:
        """Remember a hook event; it runs after the next successful commit."""
        self._pending.append(event)

    async def commit(self) -> None:
        """Commit, then run the hooks of the events this transaction recorded."""
        await self.session.commit()
        events, self._pending = self._pending, []
        await self.hooks.dispatch(events)

    async def rollback(self) -> None:
        """Roll back and forget the hook events of the transaction."""
        await self.session.rollback()
        self._pending.clear()

    async def close(self) -> None:
        """End the session: roll back what was not committed; loaded rows stay readable."""
        self._pending.clear()
        await self.session.close()

    def describe(self, entity_type: str, row: Any) -> dict[str, Any]:
        """A JSON-friendly summary of a row for hook events."""
        fields = ("status", "amount", "currency", "refunded_amount", "provider", "reference", "customer_id")
        data: dict[str, Any] = {"id": str(row.id), "entity_type": entity_type}
        for name in fields:
            if hasattr(row, name):
                value = getattr(row, name)
                data[name] = value if isinstance(value, int | str | type(None)) else str(value)
        return data
