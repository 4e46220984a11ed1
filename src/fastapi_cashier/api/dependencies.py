"""FastAPI dependencies a host uses on its own routes (and the router on its routes).

On a host's route no ``ProblemRoute`` turns library errors into answers, so every dependency
here raises :class:`~fastapi_cashier.api.problems.CashierHTTPException`: FastAPI answers it with
the error's status and headers (401, 402, 403, 429 with ``Retry-After``), and the router's own
routes still answer it as a problem document with the stable ``code``.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from ..billing.service import PaymentsService
from ..db.models import Customer
from ..errors import AuthenticationError, CashierError, RateLimitExceededError
from .auth import DemoAuthenticator, JWTAuthenticator, Principal, require_admin, storable_principal
from .problems import CashierHTTPException

if TYPE_CHECKING:
    from .router import Authenticate, PaymentsRouter

__all__ = [
    "admin_dependency",
    "consume_credits_dependency",
    "customer_dependency",
    "http_errors",
    "principal_dependency",
    "rate_limit_dependency",
    "request_service_dependency",
    "require_feature_dependency",
    "require_subscription_dependency",
]


@contextlib.contextmanager
def http_errors() -> Iterator[None]:
    """Re-raise library errors as :class:`CashierHTTPException`."""
    try:
        yield
    except CashierError as exc:
        raise CashierHTTPException(exc) from exc


def _storable(principal: Principal) -> Principal:
    try:
        return storable_principal(principal)
    except AuthenticationError as exc:
        raise CashierHTTPException(exc) from exc


class _BearerPrincipal(HTTPBearer):
    """The signed-in principal of a built-in authenticator, as the bearer security scheme.

    One dependency that is both: FastAPI declares the scheme in the OpenAPI document (Swagger's
    "Authorize" button), and calling it reads and verifies the header with the authenticator
    and returns the storable principal. It answers 401 itself, never the scheme's own 403.
    """

    def __init__(self, authenticator: JWTAuthenticator | DemoAuthenticator) -> None:
        super().__init__(
            auto_error=False, scheme_name="HTTPBearer", description="A JWT signed with auth.jwt_secret"
        )
        self._authenticator = authenticator

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        return _storable(await self._authenticator(request))


def principal_dependency(authenticate: "Authenticate") -> Callable[..., Awaitable[Principal]]:
    """The signed-in principal; the built-in authenticators also declare the bearer scheme."""
    if isinstance(authenticate, JWTAuthenticator | DemoAuthenticator):
        return _BearerPrincipal(authenticate)

    async def current_principal(principal: Principal = Depends(authenticate)) -> Principal:
        return _storable(principal)

    return current_principal


def admin_dependency(payments: "PaymentsRouter") -> Callable[..., Awaitable[Principal]]:
    """The signed-in principal if it has the admin role (403 otherwise)."""

    async def current_admin(principal: Principal = Depends(payments.current_principal)) -> Principal:
        with http_errors():
            return require_admin(principal)

    return current_admin


#: Methods whose library routes do all their work in the request's read unit of work.
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def request_service_dependency(payments: "PaymentsRouter") -> Callable[..., AsyncIterator[PaymentsService]]:
    """See :attr:`PaymentsRouter.request_service`."""

    async def request_service() -> AsyncIterator[PaymentsService]:
        # Opened and closed without context managers: this runs on every request.
        svc, key = await payments._open_request_unit()
        try:
            yield svc
        finally:
            await payments._close_request_unit(svc, key)

    return request_service


def customer_dependency(payments: "PaymentsRouter") -> Callable[..., Awaitable[Customer]]:
    """The signed-in customer, created from the principal on first use.

    A known customer is read in the request's unit of work (no commit). A new one is stored in
    a write transaction of its own (one ``INSERT`` that does nothing when a concurrent first
    request stored it first) and committed at once, so the other sessions of the request (a
    route's writes, the idempotency store) see the row its foreign keys point to; the request's
    unit of work then starts a fresh transaction and holds the stored row without reading it
    back (the row a concurrent first request stored is read).
    """

    async def current_customer(
        request: Request,
        principal: Principal = Depends(payments.current_principal),
        svc: PaymentsService = Depends(payments.request_service),
    ) -> Customer:
        with http_errors():
            found = await svc.customers.find(principal.subject)
            if found is not None:
                if request.method not in _READS:
                    # A writing route opens sessions of its own (the write transaction, the
                    # idempotency store): holding this connection meanwhile could empty the pool.
                    await svc.close()
                return found
            async with payments.service() as writer:
                stored = await writer.customers.store_if_missing(principal.subject, email=principal.email)
            # A fresh transaction from here on, which sees the committed row on every database.
            await svc.session.rollback()
            if stored is not None:
                # The row as committed, every column known: no read back.
                svc.session.add(stored)
                created: Customer | None = stored
            else:
                # A concurrent first request stored it.
                created = await svc.customers.find(principal.subject)
            if created is None:  # pragma: no cover - the row was committed just above
                raise AuthenticationError("the customer of this subject could not be stored")
            if request.method not in _READS:
                await svc.close()
            return created

    return current_customer


def require_subscription_dependency(
    payments: "PaymentsRouter", plans: Iterable[str | uuid.UUID] | str | uuid.UUID | None
) -> Callable[..., Awaitable[Customer]]:
    """See :meth:`PaymentsRouter.require_subscription`."""
    if plans is None:
        wanted: list[str | uuid.UUID] | None = None
    elif isinstance(plans, str | uuid.UUID):
        wanted = [plans]
    else:
        wanted = list(plans)

    async def require_subscription(
        customer: Customer = Depends(payments.current_customer),
        svc: PaymentsService = Depends(payments.request_service),
    ) -> Customer:
        with http_errors():
            await svc.entitlements.require_subscription(customer.id, wanted)
        return customer

    return require_subscription


def require_feature_dependency(payments: "PaymentsRouter", key: str) -> Callable[..., Awaitable[Customer]]:
    """See :meth:`PaymentsRouter.require_feature`."""

    async def require_feature(
        customer: Customer = Depends(payments.current_customer),
        svc: PaymentsService = Depends(payments.request_service),
    ) -> Customer:
        with http_errors():
            await svc.entitlements.require_feature(customer.id, key)
        return customer

    return require_feature


def rate_limit_dependency(payments: "PaymentsRouter") -> Callable[..., Awaitable[Customer]]:
    """See :meth:`PaymentsRouter.rate_limit`."""

    async def rate_limit(customer: Customer = Depends(payments.current_customer)) -> Customer:
        with http_errors():
            async with payments.service() as svc:
                results = await svc.rate_limits.hit_plan_limits(customer.id)
            for result in results:
                if not result.allowed:
                    raise RateLimitExceededError(
                        f"rate limit exceeded: {result.scope} is {result.limit}; "
                        f"retry in {result.retry_after_seconds} seconds",
                        retry_after_seconds=result.retry_after_seconds,
                        details={"limit": result.limit, "scope": result.scope},
                    )
        return customer

    return rate_limit


def consume_credits_dependency(payments: "PaymentsRouter", amount: int) -> Callable[..., Awaitable[int]]:
    """See :meth:`PaymentsRouter.consume_credits`."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise ValueError(f"consume_credits needs a positive integer amount, not {amount!r}")

    async def consume_credits(
        request: Request, customer: Customer = Depends(payments.current_customer)
    ) -> int:
        reason = f"{request.method} {request.url.path}"[:500]
        with http_errors():
            async with payments.service() as svc:
                return await svc.credits.consume(customer.id, amount, reason=reason)

    return consume_credits
