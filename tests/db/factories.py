"""Small builders for rows the database tests need."""

from __future__ import annotations

import uuid

from fastapi_cashier.db import models as m
from fastapi_cashier.statuses import BillingInterval, PaymentStatus, PricingModel


def customer(**overrides: object) -> m.Customer:
    values: dict[str, object] = {"external_id": f"user-{uuid.uuid4().hex[:8]}", "email": "a@example.com"}
    values.update(overrides)
    return m.Customer(**values)


def payment(customer_id: uuid.UUID, **overrides: object) -> m.Payment:
    values: dict[str, object] = {
        "customer_id": customer_id,
        "provider": "fake",
        "provider_payment_id": f"pay_{uuid.uuid4().hex[:12]}",
        "amount": 1000,
        "currency": "EUR",
        "status": PaymentStatus.SUCCEEDED,
    }
    values.update(overrides)
    return m.Payment(**values)


def plan(product_id: uuid.UUID, **overrides: object) -> m.Plan:
    values: dict[str, object] = {
        "product_id": product_id,
        "name": "Basic",
        "pricing_model": PricingModel.FLAT,
        "unit_amount": 900,
        "currency": "EUR",
        "interval": BillingInterval.MONTH,
    }
    values.update(overrides)
    return m.Plan(**values)
