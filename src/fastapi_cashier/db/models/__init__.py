"""Every fastapi-cashier table, as SQLAlchemy 2 typed models."""

from .catalog import Plan, PlanFeature, PlanTier, Product, ProviderObject
from .customers import BillingProfile, CreditAccount, CreditTransaction, Customer, CustomerAccount
from .payments import CheckoutSession, Payment, Refund
from .records import IdempotencyKey, RateLimitCounter, Sequence, StatusChange, WebhookEvent
from .subscriptions import Invoice, InvoiceLine, Subscription, UsageRecord

__all__ = [
    "BillingProfile",
    "CheckoutSession",
    "CreditAccount",
    "CreditTransaction",
    "Customer",
    "CustomerAccount",
    "IdempotencyKey",
    "Invoice",
    "InvoiceLine",
    "Payment",
    "Plan",
    "PlanFeature",
    "PlanTier",
    "Product",
    "ProviderObject",
    "RateLimitCounter",
    "Refund",
    "Sequence",
    "StatusChange",
    "Subscription",
    "UsageRecord",
    "WebhookEvent",
]
