"""The one place the official ``stripe`` SDK is loaded and its client is built.

The SDK is an optional dependency (``pip install 'fastapi-cashier[stripe]'``): importing this
package never imports it; building a provider does, and a missing SDK is a
:class:`~fastapi_cashier.errors.MissingDependencyError` naming the extra.

The client speaks through an ``httpx.AsyncClient`` (the SDK's async methods only: a synchronous
call fails loudly instead of blocking the event loop) and pins :data:`STRIPE_API_VERSION`, so the
shapes the adapter reads do not change when Stripe's account default or the SDK's default does.
"""

from __future__ import annotations

import functools
import importlib
import platform
import ssl
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import anyio
import httpx

from ...errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from stripe import StripeClient
    from stripe._base_address import BaseAddresses

__all__ = [
    "DEFAULT_TIMEOUT",
    "STRIPE_API_VERSION",
    "build_client",
    "load_stripe",
    "new_http_client",
    "tls_context",
]

STRIPE_API_VERSION: Final = "2026-10-28.endive"
"""The Stripe API version every request is made with (``Stripe-Version`` header), unless
``StripeSettings.api_version`` overrides it. The adapter's readers follow this version's shapes and
also accept the older ones that still reach webhook endpoints created on earlier versions."""

DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
"""Timeouts of the HTTP client the provider creates when it is not given one."""


def load_stripe() -> ModuleType:
    """The ``stripe`` module.

    Raises:
        MissingDependencyError: The SDK is not installed; the message names the extra.
    """
    try:
        return importlib.import_module("stripe")
    except ImportError as exc:
        raise MissingDependencyError("stripe", "stripe") from exc


def build_client(
    api_key: str,
    *,
    api_version: str,
    base_addresses: Mapping[str, str] | None,
    http_client: Callable[[], httpx.AsyncClient],
    max_network_retries: int,
) -> StripeClient:
    """One ``StripeClient`` sending through ``http_client()``, pinned to ``api_version``.

    Args:
        api_key: The secret or restricted key; never stored in the ``stripe`` module.
        api_version: The ``Stripe-Version`` sent with every request.
        base_addresses: Overrides of the SDK's base URLs (``api``, ``files``, ``connect``,
            ``meter_events``), for test servers.
        http_client: Returns the ``httpx.AsyncClient`` to send each request with.
        max_network_retries: How often the SDK retries a connection error, a 409 or a 5xx with
            the same idempotency key before giving up.
    """
    stripe = load_stripe()
    _warm_sdk_caches(stripe)
    transport_type = _transport_class(stripe)
    addresses: BaseAddresses = {}
    for name, address in (base_addresses or {}).items():
        if name not in ("api", "files", "connect", "meter_events"):
            raise ConfigurationError(
                f"unknown Stripe base address {name!r}: use api, files, connect or meter_events"
            )
        addresses[name] = address.rstrip("/")  # type: ignore[literal-required]
    client: StripeClient = stripe.StripeClient(
        api_key,
        stripe_version=api_version,
        base_addresses=addresses,
        http_client=transport_type(http_client),
        max_network_retries=max_network_retries,
    )
    return client


def tls_context() -> ssl.SSLContext:
    """The TLS settings of the SDK's own client: its CA bundle (read from disk: call at start-up)."""
    return ssl.create_default_context(cafile=load_stripe().ca_bundle_path)


def new_http_client(context: ssl.SSLContext) -> httpx.AsyncClient:
    """The HTTP client a provider owns when none is given: bounded timeouts, no file I/O."""
    return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, verify=context)


def _warm_sdk_caches(stripe: ModuleType) -> None:
    """Do, at start-up, the blocking work the SDK would otherwise do on its first request.

    With telemetry on (the SDK's default) the first request reads the interpreter's binary
    (``platform.platform()``) and reads or writes a telemetry id file; both are cached after.
    Doing it here keeps that file I/O off the event loop. The module-level setting is read,
    never changed.
    """
    if not getattr(stripe, "enable_telemetry", False):
        return
    platform.platform()
    try:
        telemetry = importlib.import_module("stripe._telemetry_id")
        telemetry.get_telemetry_id()
    except (ImportError, AttributeError):  # pragma: no cover - other SDK versions
        pass


@functools.cache
def _transport_class(stripe: ModuleType) -> type[Any]:
    """A ``stripe.HTTPClient`` subclass over ``httpx.AsyncClient`` (defined once, on first use)."""

    class HttpxTransport(stripe.HTTPClient):  # type: ignore[name-defined,misc]
        """Async requests through the provider's current ``httpx.AsyncClient``; synchronous ones
        are refused."""

        name = "httpx"

        def __init__(self, client: Callable[[], httpx.AsyncClient]) -> None:
            super().__init__()
            self._httpx = client

        async def request_async(
            self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
        ) -> tuple[bytes, int, Mapping[str, str]]:
            try:
                response = await self._httpx().request(method, url, headers=dict(headers), content=post_data)
            except httpx.HTTPError as exc:
                raise stripe.APIConnectionError(
                    f"could not reach Stripe ({type(exc).__name__}: {exc})", should_retry=True
                ) from exc
            return response.content, response.status_code, response.headers

        def request(self, method: str, url: str, headers: Any, post_data: Any = None, **_: Any) -> Any:
            raise RuntimeError(
                "the Stripe provider's client makes asynchronous calls only: use the SDK's *_async "
                "methods (a synchronous call would block the event loop)"
            )

        def sleep_async(self, secs: float) -> Any:
            return anyio.sleep(secs)

        async def close_async(self) -> None:
            """The provider that created the HTTP client closes it."""

        def close(self) -> None:
            """Nothing to close synchronously."""

    return HttpxTransport
