"""The Lemon Squeezy adapter: checkouts, orders, subscriptions, usage and signed webhooks.

:class:`LemonSqueezyProvider` implements :class:`~fastapi_cashier.providers.base.PaymentProvider`
with an asynchronous JSON:API client of the library's own over httpx: no SDK is needed.

Parts: ``provider`` (the class, fetch and webhooks), ``_payments`` (customers, checkouts, refunds,
portal links), ``_subscriptions`` (plan and quantity changes, cancel, resume, pause, usage),
``_catalog`` (plans linked to existing variants), ``_objects`` and ``_events`` (JSON:API resources
-> snapshots and events), ``_signature`` (``X-Signature``), ``_client`` (the JSON:API client),
``_errors`` (JSON:API ``errors[]`` -> the library's error tree).
"""

from __future__ import annotations

from ._catalog import CatalogLinks, PriceDifference
from ._client import DEFAULT_API_BASE, JSON_API, LemonSqueezyClient
from ._events import SUBSCRIBED_EVENTS
from ._signature import SIGNATURE_HEADER
from ._subscriptions import PRORATION_OPTIONS
from .provider import LEMONSQUEEZY_CAPABILITIES, LemonSqueezyProvider

__all__ = [
    "DEFAULT_API_BASE",
    "JSON_API",
    "LEMONSQUEEZY_CAPABILITIES",
    "PRORATION_OPTIONS",
    "SIGNATURE_HEADER",
    "SUBSCRIBED_EVENTS",
    "CatalogLinks",
    "LemonSqueezyClient",
    "LemonSqueezyProvider",
    "PriceDifference",
]
