"""The Lemon Squeezy adapter: checkouts, orders, subscriptions, usage and signed webhooks.

Parts: ``_client`` (an asynchronous JSON:API client of the library's own over httpx: no SDK is
needed), ``_errors`` (JSON:API ``errors[]`` -> the library's error tree).
"""

from __future__ import annotations

from ._client import DEFAULT_API_BASE, JSON_API, LemonSqueezyClient

__all__ = ["DEFAULT_API_BASE", "JSON_API", "LemonSqueezyClient"]
