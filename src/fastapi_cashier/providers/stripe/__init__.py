"""The Stripe adapter: Checkout, refunds, Billing subscriptions and signed webhooks.

:class:`StripeProvider` implements :class:`~fastapi_cashier.providers.base.PaymentProvider` with the
official ``stripe`` SDK (``pip install 'fastapi-cashier[stripe]'``), through one
``stripe.StripeClient`` per provider and its async methods over httpx. Importing this package
does not import the SDK; building a provider does.

Parts: ``provider`` (the class, fetch and webhooks), ``_payments`` (customers, Checkout, refunds,
portal), ``_subscriptions`` (changes, cancel, resume, pause, usage), ``_catalog`` (Products, Prices,
Meters), ``_objects``, ``_invoices`` and ``_events`` (JSON -> snapshots and events), ``_signature``
(``Stripe-Signature``), ``_errors`` (SDK errors -> the library's), ``_sdk`` (loading the SDK,
building the client).
"""

from __future__ import annotations

from ._errors import stripe_errors
from ._sdk import STRIPE_API_VERSION
from ._signature import SIGNATURE_HEADER
from .provider import StripeProvider

__all__ = ["SIGNATURE_HEADER", "STRIPE_API_VERSION", "StripeProvider", "stripe_errors"]
