"""The demo shop behind ``fastapi-cashier demo``: a concert ticket and a per-seat subscription.

:func:`create_demo_app` builds a FastAPI app that mounts :class:`~fastapi_cashier.PaymentsRouter`
at ``/billing`` with the fake provider and the manual provider, plus a few host pages that use
the library the way a real shop would: server-side, through ``payments.service()``, and with the
router's dependencies on a route of its own. Nothing here moves real money, and everything runs
on SQLite. The HTML lives in :mod:`fastapi_cashier.demo.pages`.
"""

import secrets
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Final

import anyio
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..api.problems import ProblemRoute
from ..api.router import PaymentsRouter
from ..billing.catalog import FeatureValue
from ..billing.payments import PaymentFilters
from ..billing.service import PaymentsService
from ..clock import utcnow
from ..db.models import Customer, Payment, Plan, Product
from ..money import Money
from ..providers.base import PortalRequest
from ..providers.fake import FakeProvider
from ..settings import PaymentsSettings
from ..statuses import BillingInterval, PricingModel
from .pages import AccountView, ShopOffer, account_page, home_page, payments_page

__all__ = [
    "CLOCK_STEP_DAYS",
    "DEMO_CUSTOMER",
    "DEMO_CUSTOMER_EMAIL",
    "HOBBY_FEATURES",
    "HOBBY_PLAN",
    "MAX_SEATS",
    "TEAM_FEATURES",
    "TEAM_PLAN",
    "TEAM_PRODUCT",
    "TEAM_SEAT_PRICE",
    "TEAM_TRIAL_DAYS",
    "TICKET_PRICE",
    "DemoCatalog",
    "create_demo_app",
    "seed_catalog",
]

#: The host user id the demo pages buy for (the customer's ``external_id``).
DEMO_CUSTOMER: Final = "demo-customer"
DEMO_CUSTOMER_EMAIL: Final = "demo@example.com"
#: What the concert ticket costs.
TICKET_PRICE: Final = Money(2500, "EUR")

#: The product the demo seeds, with a per-seat plan and a free plan.
TEAM_PRODUCT: Final = "Team workspace"
TEAM_PLAN: Final = "Team"
HOBBY_PLAN: Final = "Hobby"
#: The Team plan's monthly price per seat.
TEAM_SEAT_PRICE: Final = Money(900, "EUR")
TEAM_TRIAL_DAYS: Final = 14
TEAM_FEATURES: Final[Mapping[str, FeatureValue]] = MappingProxyType(
    {"api_access": True, "requests_per_minute": 20, "requests_per_hour": 500, "credits_per_period": 100}
)
HOBBY_FEATURES: Final[Mapping[str, FeatureValue]] = MappingProxyType(
    {"requests_per_minute": 5, "requests_per_hour": 50}
)
#: The most seats the shop's form accepts.
MAX_SEATS: Final = 50
#: How far the account page's button moves the fake provider's clock.
CLOCK_STEP_DAYS: Final = 15


class _DemoSettings(PaymentsSettings):
    """``PaymentsSettings`` built only from the values the demo passes.

    The demo must behave the same wherever it is started, so ``PAYMENTS_*`` variables and a
    ``.env`` file in the working directory (a Stripe key, ``environment=production``, ...) are
    not read.
    """

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


# ------------------------------------------------------------------------------ the catalog


@dataclass(frozen=True, slots=True)
class DemoCatalog:
    """The ids of the seeded product and plans."""

    product_id: uuid.UUID
    team_plan_id: uuid.UUID
    hobby_plan_id: uuid.UUID


async def seed_catalog(payments: PaymentsRouter) -> DemoCatalog:
    """Create the demo's catalog unless it is there already; safe to run on every start.

    The product :data:`TEAM_PRODUCT` gets two monthly plans: :data:`TEAM_PLAN` (``per_unit``,
    :data:`TEAM_SEAT_PRICE` per seat, a :data:`TEAM_TRIAL_DAYS`-day trial,
    :data:`TEAM_FEATURES`) and :data:`HOBBY_PLAN` (``free``, :data:`HOBBY_FEATURES`). A product or
    plan found by name is reused, so restarting against the same database adds nothing.
    """
    async with payments.service() as svc:
        product = await svc.session.scalar(
            sa.select(Product).where(Product.name == TEAM_PRODUCT).order_by(Product.created_at).limit(1)
        )
        if product is None:
            product = await svc.catalog.create_product(
                TEAM_PRODUCT,
                description="A shared workspace, billed per seat.",
                metadata={"source": "fastapi-cashier demo"},
            )
        plans: dict[str, Plan] = {}
        for plan in await svc.session.scalars(
            sa.select(Plan).where(Plan.product_id == product.id).order_by(Plan.created_at)
        ):
            plans.setdefault(plan.name, plan)
        team = plans.get(TEAM_PLAN) or await svc.catalog.create_plan(
            product.id,
            TEAM_PLAN,
            pricing_model=PricingModel.PER_UNIT,
            unit_amount=TEAM_SEAT_PRICE.amount,
            currency=TEAM_SEAT_PRICE.currency,
            interval=BillingInterval.MONTH,
            trial_days=TEAM_TRIAL_DAYS,
            features=TEAM_FEATURES,
        )
        hobby = plans.get(HOBBY_PLAN) or await svc.catalog.create_plan(
            product.id,
            HOBBY_PLAN,
            pricing_model=PricingModel.FREE,
            unit_amount=0,
            currency=TEAM_SEAT_PRICE.currency,
            interval=BillingInterval.MONTH,
            features=HOBBY_FEATURES,
        )
        return DemoCatalog(product_id=product.id, team_plan_id=team.id, hobby_plan_id=hobby.id)


class _SeededCatalog:
    """Seeds the catalog once per app, at start-up or on the first request that needs it."""

    def __init__(self, payments: PaymentsRouter) -> None:
        self._payments = payments
        self._catalog: DemoCatalog | None = None
        self._lock = anyio.Lock()

    async def get(self) -> DemoCatalog:
        async with self._lock:
            if self._catalog is None:
                self._catalog = await seed_catalog(self._payments)
            return self._catalog


# ------------------------------------------------------------------------------ the app


def create_demo_app(
    *,
    database_url: str = "sqlite+aiosqlite:///./cashier-demo.db",
    jwt_secret: str | None = None,
) -> tuple[FastAPI, PaymentsRouter, PaymentsSettings]:
    """Build the demo shop.

    The payments router is mounted at ``/billing`` with the fake provider (events delivered to the
    webhook inbox at once, signed with a generated secret) as the default provider, the manual
    provider, JWT authentication and tables created at start-up. After the router has started,
    the app seeds its catalog (:func:`seed_catalog`). The host pages are:

    - ``GET /``: what the demo is, a form to buy a concert ticket and one to subscribe to Team;
    - ``POST /demo/buy``: creates a checkout session for :data:`DEMO_CUSTOMER` and answers 303 to
      the fake provider's hosted checkout page;
    - ``GET /demo/success`` and ``GET /demo/cancel``: where the checkout returns; both list the
      demo customer's recent payments;
    - ``POST /demo/subscribe`` (form field ``seats``, 1 to :data:`MAX_SEATS`): a subscription
      checkout for the Team plan, answered 303 to the hosted checkout page;
    - ``GET /demo/account``: the customer's subscriptions, invoices and credit balance;
    - ``POST /demo/clock/advance``: moves the fake provider's clock :data:`CLOCK_STEP_DAYS` days;
    - ``POST /demo/portal``: opens the fake provider's billing portal;
    - ``GET /demo/api/data``: JSON for a bearer token whose plan has ``api_access``, counted
      against the plan's ``requests_per_minute`` (problem documents: 402, 403, 429).

    The settings ignore ``PAYMENTS_*`` environment variables and ``.env`` files.

    Args:
        database_url: Where the tables live; an async SQLAlchemy URL.
        jwt_secret: The HS256 secret of the bearer tokens; a random one when ``None`` (tokens
            then stop working when the process ends).

    Returns:
        The app, its payments router and the settings (``settings.auth`` signs tokens with
        :func:`fastapi_cashier.api.auth.create_token`).
    """
    settings: PaymentsSettings = _DemoSettings(
        environment="development",
        database={"url": database_url, "create_tables": True},
        default_currency=TICKET_PRICE.currency,
        default_provider="fake",
        auth={"jwt_secret": jwt_secret if jwt_secret is not None else secrets.token_urlsafe(32)},
        fake={"webhook_secret": secrets.token_urlsafe(32), "auto_deliver": True},
        manual={"enabled": True},
    )
    payments = PaymentsRouter(settings)
    app = FastAPI(
        title="fastapi-cashier demo shop",
        description="A concert ticket and a per-seat subscription paid through the fake provider; "
        "the payments API is under /billing.",
    )
    app.include_router(payments, prefix="/billing")
    # Included after the payments router, so FastAPI runs its lifespan after the router's start-up.
    catalog = _SeededCatalog(payments)
    app.include_router(_shop_routes(app, payments, catalog))
    app.include_router(_api_routes(payments))
    return app, payments, settings


async def _demo_customer(svc: PaymentsService) -> Customer:
    return await svc.customers.get_or_create(DEMO_CUSTOMER, email=DEMO_CUSTOMER_EMAIL)


def _fake(payments: PaymentsRouter) -> FakeProvider:
    provider = payments.providers["fake"]
    assert isinstance(provider, FakeProvider), "the demo always runs the fake provider"
    return provider


#: Messages the account page shows for ``?notice=...``.
_NOTICES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "portal-forgotten": "The fake provider keeps its customers in memory and this demo process "
        "has not met you yet: subscribe (or buy) once, then open the billing portal again.",
    }
)

_OFFER: Final = ShopOffer(
    customer=DEMO_CUSTOMER,
    ticket_price=TICKET_PRICE,
    seat_price=TEAM_SEAT_PRICE,
    trial_days=TEAM_TRIAL_DAYS,
    max_seats=MAX_SEATS,
    requests_per_minute=int(TEAM_FEATURES["requests_per_minute"]),
    credits_per_period=int(TEAM_FEATURES["credits_per_period"]),
)


def _shop_routes(app: FastAPI, payments: PaymentsRouter, catalog: _SeededCatalog) -> APIRouter:
    """The HTML pages and their form posts; the router's lifespan seeds the catalog."""

    @asynccontextmanager
    async def seed(_app: FastAPI) -> AsyncIterator[None]:
        await catalog.get()
        yield

    router = APIRouter(lifespan=seed, include_in_schema=False)

    @router.get("/", name="demo:home", response_class=HTMLResponse)
    async def home(request: Request) -> HTMLResponse:
        """The shop window."""
        return HTMLResponse(
            home_page(
                offer=_OFFER,
                buy_url=str(request.url_for("demo:buy")),
                subscribe_url=str(request.url_for("demo:subscribe")),
                account_url=str(request.url_for("demo:account")),
                api_url=str(request.url_for("demo:api_data")),
                billing_url=PaymentsRouter.base_url(request),
                docs_url=request.scope.get("root_path", "") + app.docs_url if app.docs_url else None,
            )
        )

    # ---------------------------------------------------------------- the ticket

    @router.post("/demo/buy", name="demo:buy")
    async def buy(request: Request) -> RedirectResponse:
        """Start a checkout for one ticket and send the buyer to the hosted checkout page."""
        async with payments.service(base_url=PaymentsRouter.base_url(request)) as svc:
            session = await svc.checkout.create(
                await _demo_customer(svc),
                amount=TICKET_PRICE.amount,
                currency=TICKET_PRICE.currency,
                description="Concert ticket",
                success_url=str(request.url_for("demo:success")),
                cancel_url=str(request.url_for("demo:cancel")),
                reference="ticket-1",
            )
        assert session.url is not None, "the fake provider always returns a hosted page"
        return RedirectResponse(session.url, status_code=303)

    async def recent_payments() -> Sequence[Payment]:
        async with payments.service() as svc:
            customer = await _demo_customer(svc)
            page = await svc.payments.list(PaymentFilters(customer_id=customer.id), limit=10)
        return page.items

    async def payments_listing(request: Request, title: str, message: str) -> HTMLResponse:
        return HTMLResponse(
            payments_page(
                title=title,
                message=message,
                customer=DEMO_CUSTOMER,
                payments=await recent_payments(),
                home_url=str(request.url_for("demo:home")),
            )
        )

    @router.get("/demo/success", name="demo:success", response_class=HTMLResponse)
    async def success(request: Request) -> HTMLResponse:
        """Where the checkout returns after a payment."""
        return await payments_listing(
            request,
            "Thank you!",
            "The checkout is complete. The fake provider's webhook has already been applied, so the "
            "payment below shows its final status.",
        )

    @router.get("/demo/cancel", name="demo:cancel", response_class=HTMLResponse)
    async def cancel(request: Request) -> HTMLResponse:
        """Where the checkout returns after a decline or a failed 3-D Secure challenge."""
        return await payments_listing(
            request,
            "Payment not completed",
            "The payment was declined or its authentication failed; nothing was charged. You can try again.",
        )

    # ---------------------------------------------------------------- the subscription

    @router.post("/demo/subscribe", name="demo:subscribe")
    async def subscribe(
        request: Request, seats: Annotated[int, Form(ge=1, le=MAX_SEATS)]
    ) -> RedirectResponse:
        """Start a subscription checkout for the Team plan and send the buyer to the hosted page."""
        team_plan_id = (await catalog.get()).team_plan_id
        async with payments.service(base_url=PaymentsRouter.base_url(request)) as svc:
            session = await svc.checkout.create(
                await _demo_customer(svc),
                plan_id=team_plan_id,
                quantity=seats,
                success_url=str(request.url_for("demo:account")),
                cancel_url=str(request.url_for("demo:home")),
            )
        assert session.url is not None, "the fake provider always returns a hosted page"
        return RedirectResponse(session.url, status_code=303)

    @router.get("/demo/account", name="demo:account", response_class=HTMLResponse)
    async def account(
        request: Request, notice: Annotated[str | None, Query(max_length=40)] = None
    ) -> HTMLResponse:
        """The demo customer's subscriptions, invoices and credits."""
        async with payments.service() as svc:
            customer = await _demo_customer(svc)
            subscriptions = (await svc.subscriptions.list_for_customer(customer.id, limit=20)).items
            plan_names = {
                plan_id: (await svc.catalog.get_plan(plan_id)).name
                for plan_id in {subscription.plan_id for subscription in subscriptions}
            }
            view = AccountView(
                customer=DEMO_CUSTOMER,
                subscriptions=[(sub, plan_names[sub.plan_id]) for sub in subscriptions],
                invoices=(await svc.invoices.list_for_customer(customer.id, limit=20)).items,
                credits=await svc.credits.balance(customer.id),
                clock=_fake(payments).now(),
                clock_step_days=CLOCK_STEP_DAYS,
                notice=_NOTICES.get(notice or ""),
            )
        return HTMLResponse(
            account_page(
                view,
                advance_url=str(request.url_for("demo:advance_clock")),
                portal_url=str(request.url_for("demo:portal")),
                home_url=str(request.url_for("demo:home")),
                api_url=str(request.url_for("demo:api_data")),
            )
        )

    @router.post("/demo/clock/advance", name="demo:advance_clock")
    async def advance_clock(request: Request) -> RedirectResponse:
        """Move the fake provider's clock; what falls due happens, and its webhooks are applied."""
        now = await _fake(payments).advance(days=CLOCK_STEP_DAYS)
        # The credit expiry job a real app runs periodically, here on the fake provider's time.
        async with payments.service() as svc:
            await svc.credits.expire_due(now=now)
        return RedirectResponse(str(request.url_for("demo:account")), status_code=303)

    @router.post("/demo/portal", name="demo:portal")
    async def portal(request: Request) -> RedirectResponse:
        """Open the fake provider's billing portal for the demo customer."""
        base_url = PaymentsRouter.base_url(request)
        fake = _fake(payments)
        async with payments.service(base_url=base_url) as svc:
            customer = await _demo_customer(svc)
            provider_customer_id = await svc.customers.provider_customer_id(customer, fake)
            reference = svc.customers.reference(customer, provider_customer_id)
        if provider_customer_id not in fake.customers:
            # The database outlived an earlier demo process; this one's fake provider never met them.
            account_url = request.url_for("demo:account").include_query_params(notice="portal-forgotten")
            return RedirectResponse(str(account_url), status_code=303)
        # Called after the transaction has committed: no transaction stays open across a provider call.
        session = await fake.create_portal_session(
            PortalRequest(
                customer=reference, return_url=str(request.url_for("demo:account")), return_base_url=base_url
            )
        )
        return RedirectResponse(session.url, status_code=303)

    return router


def _api_routes(payments: PaymentsRouter) -> APIRouter:
    """A JSON route of the host guarded by the router's dependencies; errors are problem documents."""
    router = APIRouter(route_class=ProblemRoute, tags=["demo"])

    @router.get(
        "/demo/api/data",
        name="demo:api_data",
        # Checked first: a customer without api_access is refused before the request is counted.
        dependencies=[Depends(payments.require_feature("api_access"))],
    )
    async def api_data(customer: Annotated[Customer, Depends(payments.rate_limit())]) -> dict[str, Any]:
        """Data for customers whose plan has ``api_access``, within their ``requests_per_minute``."""
        return {
            "customer": customer.external_id,
            "message": "Hello from a host route guarded by require_feature('api_access') and rate_limit().",
            "served_at": utcnow().isoformat(),
        }

    return router
