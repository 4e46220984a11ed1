"""An asynchronous JSON:API client of the Lemon Squeezy API, over one pooled ``httpx.AsyncClient``.

Every request carries the bearer key and the JSON:API media type both ways. Answers are JSON:API
documents: a resource is ``{"type", "id", "attributes", "relationships", "links"}``. Errors are
translated by :mod:`._errors`.

Lemon Squeezy takes no idempotency keys. A creating call (a checkout, a usage record, a webhook)
whose answer is lost may or may not have created the object, so :meth:`LemonSqueezyClient.create`
never re-sends blindly: after an ambiguous fault it looks the object up by the local id the
adapter put into it (``lookup``), returns it when it exists, and lets the fault through (to be
retried) only when it does not. A rate limit (429) is not ambiguous: Lemon Squeezy did nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, cast

import httpx

from ...errors import ConfigurationError, ProviderError, ProviderRateLimitError
from ._errors import PROVIDER_NAME, error_from_response, error_from_transport

__all__ = ["DEFAULT_API_BASE", "JSON_API", "LemonSqueezyClient", "Resource"]

logger = logging.getLogger("fastapi_cashier.providers.lemonsqueezy")

DEFAULT_API_BASE: Final = "https://api.lemonsqueezy.com/v1"
JSON_API: Final = "application/vnd.api+json"
DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 1000

Resource = dict[str, Any]
"""One JSON:API resource object: ``type``, ``id``, ``attributes``, ``relationships``, ``links``."""

Lookup = Callable[[], Awaitable[Resource | None]]


class LemonSqueezyClient:
    """Calls to ``api_base`` with ``api_key``; one connection pool, closed by :meth:`aclose`.

    Args:
        api_key: The API key (a bearer token).
        api_base: The API's address, ``https://api.lemonsqueezy.com/v1`` by default; tests point it
            at an in-process server.
        http_client: A client to send requests with (a mock or ASGI transport, proxies). The caller
            closes it; without one the client makes and owns its own pool.

    Raises:
        ConfigurationError: No API key.
    """

    def __init__(
        self, *, api_key: str, api_base: str = DEFAULT_API_BASE, http_client: httpx.AsyncClient | None = None
    ) -> None:
        if not api_key:
            raise ConfigurationError(
                "the Lemon Squeezy adapter needs an API key (PAYMENTS_LEMONSQUEEZY__API_KEY)"
            )
        self.api_base = api_base.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": JSON_API,
            "Content-Type": JSON_API,
        }
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)

    async def aclose(self) -> None:
        """Close the connection pool, when this client made it."""
        if self._owns_http:
            await self._http.aclose()

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        document: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one request; the answer's JSON:API document (``{}`` for an empty answer).

        Raises:
            ProviderError: A subclass for the answer's status, or for a request that got none.
        """
        url = f"{self.api_base}/{path.lstrip('/')}"
        try:
            response = await self._http.request(
                method, url, params=dict(params or {}), json=document, headers=self._headers
            )
        except httpx.TransportError as exc:
            raise error_from_transport(exc, operation=operation) from exc
        if response.is_error:
            raise error_from_response(response, operation=operation)
        if not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError as exc:
            raise ProviderError(
                f"Lemon Squeezy answered an attempt to {operation} with a body that is not JSON",
                provider=PROVIDER_NAME,
                details={"http_status": response.status_code},
            ) from exc
        if not isinstance(answer, dict):
            raise ProviderError(
                f"Lemon Squeezy answered an attempt to {operation} with a JSON {type(answer).__name__}, "
                "not a JSON:API document",
                provider=PROVIDER_NAME,
            )
        return cast("dict[str, Any]", answer)

    async def get(self, path: str, *, operation: str, params: Mapping[str, str] | None = None) -> Resource:
        """Read one resource."""
        return self._resource(await self.request("GET", path, operation=operation, params=params), operation)

    async def patch(self, path: str, document: Mapping[str, Any], *, operation: str) -> Resource:
        """Change one resource; its new state."""
        return self._resource(
            await self.request("PATCH", path, operation=operation, document=document), operation
        )

    async def post(self, path: str, document: Mapping[str, Any], *, operation: str) -> Resource:
        """Create or act on a resource, without any look-up on a fault (see :meth:`create`)."""
        return self._resource(
            await self.request("POST", path, operation=operation, document=document), operation
        )

    async def delete(self, path: str, *, operation: str) -> None:
        """Delete one resource."""
        await self.request("DELETE", path, operation=operation)

    async def create(
        self, path: str, document: Mapping[str, Any], *, operation: str, lookup: Lookup
    ) -> Resource:
        """Create a resource at most once: after an ambiguous fault, ``lookup`` decides.

        Args:
            lookup: Finds the object this call creates by the local id it carries; ``None`` when
                it does not exist.

        Raises:
            ProviderError: The fault, when the look-up finds nothing (retriable: nothing exists,
                so sending again is safe); any other refusal as it came.
        """
        try:
            return await self.post(path, document, operation=operation)
        except ProviderError as exc:
            if not exc.retriable or isinstance(exc, ProviderRateLimitError):
                raise
            fault = exc
        logger.warning("lemonsqueezy: %s; looking the object up before trying again", fault.message)
        found = await lookup()
        if found is not None:
            return found
        raise fault

    async def iterate(
        self, path: str, *, operation: str, filters: Mapping[str, str] | None = None
    ) -> AsyncIterator[Resource]:
        """Every resource of a list, page after page (``filter[...]`` from ``filters``)."""
        params = {f"filter[{key}]": value for key, value in (filters or {}).items()}
        params["page[size]"] = str(PAGE_SIZE)
        for number in range(1, MAX_PAGES + 1):
            params["page[number]"] = str(number)
            answer = await self.request("GET", path, operation=operation, params=params)
            data = answer.get("data")
            if not isinstance(data, list):
                raise ProviderError(
                    f"Lemon Squeezy answered an attempt to {operation} without a list of resources",
                    provider=PROVIDER_NAME,
                )
            for item in data:
                if isinstance(item, dict):
                    yield cast("Resource", item)
            if not data or number >= _last_page(answer):
                return

    async def find(
        self,
        path: str,
        *,
        operation: str,
        filters: Mapping[str, str] | None = None,
        where: Callable[[Resource], bool],
    ) -> Resource | None:
        """The first resource of a list that ``where`` accepts, or ``None``."""
        async for item in self.iterate(path, operation=operation, filters=filters):
            if where(item):
                return item
        return None

    @staticmethod
    def _resource(answer: Mapping[str, Any], operation: str) -> Resource:
        data = answer.get("data")
        if not isinstance(data, dict) or "id" not in data:
            raise ProviderError(
                f"Lemon Squeezy answered an attempt to {operation} without a resource",
                provider=PROVIDER_NAME,
            )
        return cast("Resource", data)


def _last_page(answer: Mapping[str, Any]) -> int:
    meta = answer.get("meta")
    page = meta.get("page") if isinstance(meta, dict) else None
    last = page.get("lastPage") if isinstance(page, dict) else None
    return last if isinstance(last, int) and not isinstance(last, bool) else 1
