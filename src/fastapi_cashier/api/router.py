"""``PaymentsRouter``: the whole library behind one ``include_router`` call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.routing import BaseRoute, Route

from ..billing.hooks import Hook, HookRegistry
from ..billing.service import PaymentsService
from ..db.base import utcnow
from ..db.engine import create_engine, create_session_factory, create_tables
from ..db.models import Customer
from ..errors import ConfigurationError
from ..providers.base import PaymentProvider, ProviderHost, RouteContributor, check_adapter
from ..providers.fake import FakeProvider
from ..providers.manual import ManualProvider
from ..settings import PaymentsSettings
from ..webhooks.inbox import WebhookInbox
from . import dependencies
from .auth import DemoAuthenticator, JWTAuthenticator, Principal
from .idempotency import IdempotencyStore
from .problems import ProblemRoute, problem_responses

__all__ = ["PaymentsRouter"]

logger = logging.getLogger("fastapi_cashier")

Authenticate = Callable[..., Principal | Awaitable[Principal]]

#: Stored events the background loop applies per pass before looking again at once.
_BATCH = 100
_HOUSEKEEPING_INTERVAL = 3600.0


_SECTIONS = frozenset({"fake", "manual", "stripe", "paypal", "lemonsqueezy"})


class PaymentsRouter(APIRouter):
    """Payments and subscription billing for a FastAPI app.

    Example:
        ``app.include_router(PaymentsRouter(PaymentsSettings()), prefix="/billing")``

    The router owns the database engine through its lifespan (FastAPI runs a router's lifespan
    when the app includes it). Its routes have stable names (``payments:...``) for
    ``url_path_for``.

    Args:
        settings: Every data-level setting; ``None`` reads them from the environment.
        authenticate: A FastAPI dependency returning a :class:`Principal`, for hosts with their
            own auth. Without it the built-in JWT bearer auth of ``settings.auth`` is used.
        providers: Extra provider adapters (objects following the ``PaymentProvider``
            protocol), added to the built-in ones configured in settings.

    Raises:
        ConfigurationError: the configuration is unsafe or incomplete (no authentication, a
            provider section without its webhook secret, duplicate provider names, ...).
    """

    def __init__(
        self,
        settings: PaymentsSettings | None = None,
        *,
        authenticate: Authenticate | None = None,
        providers: Iterable[PaymentProvider] = (),
    ) -> None:
        super().__init__(route_class=ProblemRoute, lifespan=self._lifespan)
        self.settings = settings if settings is not None else PaymentsSettings()
        self.hooks = HookRegistry()
        self.providers: dict[str, PaymentProvider] = self._build_providers(providers)
        self._authenticate = self._build_authenticator(authenticate)
        self._engine: AsyncEngine | None = None
        self._session_factory: async_sessionmaker[AsyncSession] | None = None
        self._read_session_factory: async_sessionmaker[AsyncSession] | None = None
        # The read unit of work of each request in flight, by task: a write unit of work opened
        # in the same task first hands its connection back to the pool (see ``service``).
        self._request_units: dict[int, PaymentsService] = {}
        self._start_lock = anyio.Lock()
        self.idempotency = IdempotencyStore(_LazySessionFactory(self))  # type: ignore[arg-type]
        self.inbox = WebhookInbox(
            session_factory=lambda: self.session_factory,
            providers=self.providers,
            service_factory=lambda session: self._new_service(session),
            settings=self.settings.webhooks,
        )
        self.current_principal = dependencies.principal_dependency(self._authenticate)
        self.current_admin = dependencies.admin_dependency(self)
        #: A dependency yielding the request's unit of work: one session shared by
        #: ``current_customer``, the entitlement checks and the route. It is for reads: it
        #: never commits, and leaving the request rolls back what was not committed.
        self.request_service = dependencies.request_service_dependency(self)
        self.current_customer = dependencies.customer_dependency(self)

        from .routes import build_routes

        built = build_routes(self)
        flat = _plain_routes(built)
        if flat is None:
            self.include_router(built)
        else:
            # The same route objects, one level deep: FastAPI matches a request against each
            # level of inclusion in turn (twice per level on recent versions), so every nested
            # router costs every request a scan of its routes.
            self.routes.extend(flat)
        self._include_provider_routes()

    # ------------------------------------------------------------------ configuration

    def _build_providers(self, extra: Iterable[PaymentProvider]) -> dict[str, PaymentProvider]:
        settings = self.settings
        built: dict[str, PaymentProvider] = {}
        if settings.fake is not None:
            if settings.environment == "production":
                raise ConfigurationError("the fake provider cannot run with environment='production'")
            built["fake"] = FakeProvider.from_settings(
                settings.fake, tolerance_seconds=settings.webhooks.tolerance_seconds
            )
        if settings.manual is not None and settings.manual.enabled:
            built["manual"] = ManualProvider()
        if settings.stripe is not None:
            from ..providers.stripe import StripeProvider

            built["stripe"] = StripeProvider.from_settings(
                settings.stripe, tolerance_seconds=settings.webhooks.tolerance_seconds
            )
        if settings.paypal is not None:
            from ..providers.paypal import PayPalProvider

            built["paypal"] = PayPalProvider.from_settings(
                settings.paypal, tolerance_seconds=settings.webhooks.tolerance_seconds
            )
        if settings.lemonsqueezy is not None:
            from ..providers.lemonsqueezy import LemonSqueezyProvider

            built["lemonsqueezy"] = LemonSqueezyProvider.from_settings(settings.lemonsqueezy)
        for provider in extra:
            if isinstance(provider, type):
                # A class has the protocol's attributes too; its methods would be unbound.
                raise ConfigurationError(
                    f"{provider!r} does not implement the PaymentProvider protocol: "
                    "pass an instance, not the class"
                )
            check_adapter(provider)
            if provider.name in built:
                raise ConfigurationError(f"two providers are called {provider.name!r}")
            built[provider.name] = provider
        for provider in built.values():
            check_adapter(provider)
        default = settings.default_provider
        if default is not None and default not in built:
            section = f"PAYMENTS_{default.upper()}__*" if default in _SECTIONS else "its settings"
            raise ConfigurationError(
                f"default_provider {default!r} is not an enabled provider; enabled: "
                f"{', '.join(sorted(built)) or 'none'}. Configure {section} or pass the adapter "
                "with providers=[...]"
            )
        return built

    def _build_authenticator(self, authenticate: Authenticate | None) -> Authenticate:
        if authenticate is not None:
            return authenticate
        auth = self.settings.auth
        if auth.mode == "none":
            if self.settings.environment == "production":
                raise ConfigurationError("auth.mode='none' is refused in production")
            logger.warning("auth.mode='none': every caller is the demo admin; never use this in production")
            return DemoAuthenticator(auth)
        if not auth.configured:
            raise ConfigurationError(
                "no authentication is configured: set auth.jwt_secret (PAYMENTS_AUTH__JWT_SECRET) or "
                "auth.jwt_public_key, or pass authenticate= a dependency returning a Principal"
            )
        wants_secret = any(alg.startswith("HS") for alg in auth.jwt_algorithms)
        wants_key = any(not alg.startswith("HS") for alg in auth.jwt_algorithms)
        if wants_secret and auth.jwt_secret is None:
            raise ConfigurationError("auth.jwt_algorithms includes HS* but auth.jwt_secret is not set")
        if wants_key and auth.jwt_public_key is None:
            raise ConfigurationError(
                "auth.jwt_algorithms includes a public-key algorithm but no jwt_public_key"
            )
        return JWTAuthenticator(auth)

    # ------------------------------------------------------------------ lifecycle

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.startup()
        worker = asyncio.create_task(self._background()) if self.settings.webhooks.retry_loop else None
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await self.shutdown()

    async def _background(self) -> None:
        """Retry due webhook events, refunds a provider fault left pending and usage reports it left
        unconfirmed, and cancel the subscriptions whose period ended with a cancel at period end
        the library keeps itself (PayPal), every ``poll_interval_seconds``; housekeeping hourly.

        Runs in every app process; claiming with ``SKIP LOCKED`` keeps the processes apart. A
        failure is logged and the loop goes on: it must outlive a database restart.
        """
        interval = self.settings.webhooks.poll_interval_seconds
        housekeeping_due = time.monotonic()
        while True:
            busy = False
            try:
                results = await self.inbox.process_due(limit=_BATCH)
                busy = len(results) == _BATCH
                if results:
                    logger.info("retried %d stored webhook events", len(results))
                async with self.service() as svc:
                    await svc.refunds.resume_pending(
                        older_than=timedelta(seconds=self.settings.provider_calls.resume_after_seconds)
                    )
                async with self.service() as svc:
                    await svc.subscriptions.resume_unreported_usage(
                        older_than=timedelta(seconds=self.settings.provider_calls.resume_after_seconds)
                    )
                cancelled = await self.cancel_due_subscriptions(limit=_BATCH)
                busy = busy or len(cancelled) == _BATCH
                if time.monotonic() >= housekeeping_due:
                    await self.housekeeping()
                    housekeeping_due = time.monotonic() + _HOUSEKEEPING_INTERVAL
            except Exception:
                logger.exception("the background loop failed; it runs again in %s s", interval)
            await asyncio.sleep(0 if busy else interval)

    async def cancel_due_subscriptions(
        self, *, at: datetime | None = None, limit: int = 100
    ) -> list[uuid.UUID]:
        """Cancel at the provider each subscription set to cancel at a period end that has
        passed, for providers without a cancel at period end of their own (those declaring
        ``cancels_at_period_end_locally``, such as PayPal); the ids cancelled by this call.

        The lifespan loop runs it every ``webhooks.poll_interval_seconds``; without the loop,
        run ``fastapi-cashier subscriptions cancel-due`` from a scheduler. Each subscription is
        claimed by one caller, so any number of processes may run it at once.

        Args:
            at: The time to compare period ends with; default: now.
            limit: At most this many subscriptions per call.
        """
        async with self.service() as svc:
            return await svc.period_end.cancel_due(at=at, limit=limit)

    async def housekeeping(self) -> dict[str, int]:
        """Periodic clean-up, run hourly by the lifespan loop; call it from a scheduler otherwise.

        Expires credit grants past their ``expires_at``, deletes idempotency keys older than
        24 hours and rate-limit windows older than two days, asks VIES again about the VAT
        numbers whose check is due. Idempotent, safe in many processes.

        Returns:
            How many credits expired and rows were deleted, by kind.
        """
        async with self.service() as svc:
            expired = await svc.credits.expire_due()
        async with self.service() as svc:
            windows = await svc.rate_limits.purge(utcnow() - timedelta(days=2))
        keys = await self.idempotency.purge(timedelta(hours=24))
        async with self.service() as svc:
            checked = await svc.tax_ids.recheck_due()
        return {
            "credits_expired": expired,
            "idempotency_keys": keys,
            "rate_limit_windows": windows,
            "tax_ids_checked": sum(checked.values()),
        }

    async def startup(self) -> None:
        """Open the engine and create missing tables when configured. Idempotent."""
        if self._engine is not None:
            return  # started: every request comes through here, without taking the lock
        async with self._start_lock:
            if self._engine is not None:
                return
            engine = create_engine(self.settings.database)
            try:
                if self.settings.should_create_tables:
                    await create_tables(engine)
                else:
                    async with engine.connect():
                        pass
            except Exception:
                await engine.dispose()
                raise
            self._session_factory = create_session_factory(engine)
            self._read_session_factory = create_session_factory(engine, read_only=True)
            self._engine = engine  # last: a set engine means the router has started

    async def shutdown(self) -> None:
        """Close the providers' HTTP connections and dispose of the engine."""
        for provider in self.providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
        engine, self._engine, self._session_factory = self._engine, None, None
        self._read_session_factory = None
        if engine is not None:
            await engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        """The engine; available between start-up and shut-down."""
        if self._engine is None:
            raise ConfigurationError(
                "the PaymentsRouter has not started: include it in an app or call startup()"
            )
        return self._engine

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        """The session factory; available between start-up and shut-down."""
        if self._session_factory is None:
            raise ConfigurationError(
                "the PaymentsRouter has not started: include it in an app or call startup()"
            )
        return self._session_factory

    # ------------------------------------------------------------------ domain layer

    def _new_service(self, session: AsyncSession, base_url: str | None = None) -> PaymentsService:
        return PaymentsService(
            session,
            settings=self.settings,
            providers=self.providers,
            hooks=self.hooks,
            base_url=base_url,
            session_factory=self.session_factory,
        )

    @contextlib.asynccontextmanager
    async def service(self, *, base_url: str | None = None) -> AsyncIterator[PaymentsService]:
        """The domain layer for host code; commits on a clean exit, rolls back on an error.

        Args:
            base_url: The absolute URL the router is mounted at, needed by providers whose hosted
                pages the router serves (the fake provider's checkout page).
        """
        await self.startup()
        unit = self._request_units.get(anyio.get_current_task().id)
        if unit is not None:
            # One connection per request at a time, so concurrent requests can never hold the
            # whole pool while each waits for a second connection. The request's reads start a
            # new transaction afterwards (and see this one's writes once it commits).
            await unit.close()
        async with self.session_factory() as session:
            svc = self._new_service(session, base_url)
            try:
                yield svc
            except BaseException:
                await svc.rollback()
                raise
            await svc.commit()

    @contextlib.asynccontextmanager
    async def read_service(self) -> AsyncIterator[PaymentsService]:
        """The domain layer for reading: never commits, rolls back on leaving.

        On SQLite its transaction begins deferred, so it neither takes nor waits for the write
        lock; writes belong in :meth:`service`.
        """
        svc = await self._new_read_service()
        try:
            yield svc
        finally:
            await svc.close()

    async def _new_read_service(self) -> PaymentsService:
        """A service on a new read session (the caller closes it)."""
        await self.startup()
        factory = self._read_session_factory
        if factory is None:
            raise ConfigurationError("the PaymentsRouter has shut down")
        return self._new_service(factory())

    async def _open_request_unit(self) -> tuple[PaymentsService, int]:
        """A read service registered as the read unit of work of the current task, for the
        request's dependency; end it with :meth:`_close_request_unit`."""
        svc = await self._new_read_service()
        key = anyio.get_current_task().id
        self._request_units[key] = svc
        return svc, key

    async def _close_request_unit(self, svc: PaymentsService, key: int) -> None:
        if self._request_units.get(key) is svc:
            del self._request_units[key]
        await svc.close()

    def on(self, event_type: str) -> Callable[[Hook], Hook]:
        """Register an async hook run once per event after its transaction commits.

        Example:
            ``@payments.on("payment.succeeded")``
        """
        return self.hooks.on(event_type)

    def _include_provider_routes(self) -> None:
        """Serve the routes each adapter contributes (hosted pages, return routes) under ``/{name}``."""
        for name, provider in self.providers.items():
            if not isinstance(provider, RouteContributor):
                continue

            async def receive(headers: Mapping[str, str], body: bytes, *, _name: str = name) -> Any:
                return await self.inbox.receive(_name, headers, body)

            host = ProviderHost(
                receive=receive,
                complete_checkout=self._complete_checkout,
                admin=self.current_admin,
                route_class=ProblemRoute,
                problem_responses=problem_responses,
                finish_checkout=self._finish_checkout,
            )
            self.include_router(provider.routes(host), prefix=f"/{name}")

    async def _complete_checkout(self, session_id: uuid.UUID) -> Any:
        async with self.service() as svc:
            return await svc.checkout.complete(session_id)

    async def _finish_checkout(self, session_id: uuid.UUID) -> str:
        async with self.service() as svc:
            return await svc.checkout.finish(session_id)

    @staticmethod
    def base_url(request: Request) -> str:
        """The absolute URL of the router's root for this request."""
        health = str(request.url_for("payments:health"))
        return health.removesuffix("/health")

    # ------------------------------------------------------------------ dependencies

    def require_subscription(
        self, plans: Iterable[str | uuid.UUID] | str | uuid.UUID | None = None
    ) -> Callable[..., Awaitable[Customer]]:
        """A dependency returning the signed-in customer if a subscription entitles them.

        Subscriptions entitle while ``trialing``, ``active`` or ``past_due``. Without one the
        request answers 402 (``subscription_required``); with one to none of ``plans``, 403
        (``not_entitled``). Works on the host's own routes.

        Example:
            ``@app.get("/reports", dependencies=[Depends(payments.require_subscription(["pro"]))])``

        Args:
            plans: Plan ids or plan names, any one of which will do; ``None``: any plan.
        """
        return dependencies.require_subscription_dependency(self, plans)

    def require_feature(self, key: str) -> Callable[..., Awaitable[Customer]]:
        """A dependency returning the signed-in customer if their plan grants the feature ``key``.

        A feature is granted by a true flag, a limit above zero or a non-empty text on the plan of
        an entitling subscription. 402 without a subscription, 403 when the plan lacks ``key``.

        Example:
            ``@app.get("/api/data", dependencies=[Depends(payments.require_feature("api_access"))])``
        """
        return dependencies.require_feature_dependency(self, key)

    def rate_limit(self) -> Callable[..., Awaitable[Customer]]:
        """A dependency counting the request against the limits of the customer's plan.

        The limits are the plan features ``requests_per_minute`` and ``requests_per_hour`` (a
        feature the plan lacks is no limit). Counters live in the database, so the limits hold
        across every process sharing it. Over a limit: 429 with ``Retry-After`` (whole seconds).

        Example:
            ``@app.get("/api/data", dependencies=[Depends(payments.rate_limit())])``
        """
        return dependencies.rate_limit_dependency(self)

    def consume_credits(self, amount: int) -> Callable[..., Awaitable[int]]:
        """A dependency taking ``amount`` credits from the signed-in customer; the new balance.

        The credits are taken atomically in a transaction of their own before the route runs; a
        route that then fails can give them back with ``svc.credits.refund(...)``. Too few
        credits answer 402 (``insufficient_credits``).

        Example:
            ``async def generate(balance: int = Depends(payments.consume_credits(3))): ...``

        Raises:
            ValueError: ``amount`` is not a positive integer (when the dependency is built).
        """
        return dependencies.consume_credits_dependency(self, amount)


def _plain_routes(router: APIRouter) -> list[BaseRoute] | None:
    """The path operations of ``router`` with its plain inclusions resolved, in order.

    A plain inclusion is ``include_router(sub)`` without arguments: the sub-router's routes
    already carry their prefix, tags and responses, so they can be served as they are. ``None``
    when an inclusion adds anything of its own (or has a shape this FastAPI version does not
    expose); the caller then includes ``router`` as a whole.
    """
    flat: list[BaseRoute] = []
    for route in router.routes:
        if isinstance(route, APIRoute | Route):
            flat.append(route)
            continue
        inner = getattr(route, "original_router", None)
        context = getattr(route, "include_context", None)
        if not isinstance(inner, APIRouter) or context is None or not _plain_inclusion(context):
            return None
        nested = _plain_routes(inner)
        if nested is None:
            return None
        flat.extend(nested)
    return flat


def _plain_inclusion(context: Any) -> bool:
    """True for the include context of an ``include_router(sub)`` call without arguments."""
    defaults = (
        getattr(context, "default_response_class", None),
        getattr(context, "generate_unique_id_function", None),
        getattr(context, "strict_content_type", None),
    )
    return (
        getattr(context, "prefix", None) == ""
        and getattr(context, "tags", None) == []
        and getattr(context, "dependencies", None) == []
        and getattr(context, "responses", None) == {}
        and getattr(context, "callbacks", None) == []
        and getattr(context, "deprecated", False) is None
        and getattr(context, "include_in_schema", None) is True
        and getattr(context, "dependency_overrides_provider", False) is None
        and getattr(context, "max_body_size", False) is None
        and not getattr(context, "form_limits", True)
        and all(isinstance(value, DefaultPlaceholder) for value in defaults)
    )


class _LazySessionFactory:
    """Calls the router's session factory at use time (the engine opens at start-up)."""

    def __init__(self, router: PaymentsRouter) -> None:
        self._router = router

    def __call__(self) -> AsyncSession:
        return self._router.session_factory()
