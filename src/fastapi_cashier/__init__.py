"""fastapi-cashier: payments and subscription billing for any FastAPI app.

Mount it with one call::

    app.include_router(PaymentsRouter(PaymentsSettings()), prefix="/billing")
"""

from .__about__ import __version__
from .api.auth import Principal
from .api.problems import install_problem_handlers
from .api.router import PaymentsRouter
from .billing.hooks import DomainEvent
from .billing.service import PaymentsService
from .db import metadata
from .errors import (
    AuthenticationError,
    CashierError,
    ConfigurationError,
    ConflictError,
    ErrorCode,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    SignatureVerificationError,
    ValidationError,
)
from .money import Money
from .settings import PaymentsSettings
from .statuses import InvoiceStatus, PaymentStatus, SubscriptionStatus

__all__ = [
    "AuthenticationError",
    "CashierError",
    "ConfigurationError",
    "ConflictError",
    "DomainEvent",
    "ErrorCode",
    "InvoiceStatus",
    "Money",
    "NotFoundError",
    "PaymentStatus",
    "PaymentsRouter",
    "PaymentsService",
    "PaymentsSettings",
    "PermissionDeniedError",
    "Principal",
    "ProviderError",
    "SignatureVerificationError",
    "SubscriptionStatus",
    "ValidationError",
    "__version__",
    "install_problem_handlers",
    "metadata",
]
