"""The PayPal REST client: OAuth2 client credentials, request ids, errors, one connection pool.

No SDK is used: PayPal's Python SDKs are either deprecated and v1-only (``paypalrestsdk``) or
synchronous (``paypal-server-sdk``). This client is a thin layer over one ``httpx.AsyncClient``:

* the access token of the client-credentials grant is cached until shortly before it expires,
  fetched by one caller at a time, and fetched again once when PayPal answers 401 to a call;
* every mutating call carries ``PayPal-Request-Id``, which the caller derives from its local
  intent row, so a retried call is done once by PayPal and answered with the first result;
* PayPal's error answers and network faults become the library's errors (:mod:`._errors`).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import anyio
import httpx

from ...errors import ProviderError
from ._errors import PROVIDER_NAME, connection_error, translate_error

__all__ = ["LIVE_API_BASE", "SANDBOX_API_BASE", "PayPalClient"]

logger = logging.getLogger("fastapi_cashier")

SANDBOX_API_BASE: Final = "https://api-m.sandbox.paypal.com"
LIVE_API_BASE: Final = "https://api-m.paypal.com"

TOKEN_PATH: Final = "/v1/oauth2/token"  # noqa: S105 - a path, not a secret
_MAX_REQUEST_ID_LENGTH: Final = 108
_REFRESH_MARGIN_SECONDS: Final = 120.0

Method = Literal["GET", "POST", "PATCH"]


class PayPalClient:
    """An asynchronous client of PayPal's REST API for one app's credentials.

    Args:
        client_id: The REST app's client id.
        client_secret: Its secret.
        mode: ``"sandbox"`` or ``"live"``: which PayPal API is called.
        api_base: Another address for the API (an in-process test server); overrides ``mode``.
        transport: The httpx transport (tests pass ``httpx.ASGITransport``); default: the network.
        timeout: Seconds before a call is given up as a connection fault.
        clock: Monotonic seconds, for the token's expiry (tests pass their own).
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        mode: Literal["sandbox", "live"] = "sandbox",
        api_base: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = (api_base or (LIVE_API_BASE if mode == "live" else SANDBOX_API_BASE)).rstrip("/")
        self._credentials = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        self._transport = transport
        self._timeout = timeout
        self._http = self._open()
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = anyio.Lock()
        #: How many access tokens were fetched (for tests and diagnostics).
        self.tokens_fetched = 0

    def _open(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, transport=self._transport, timeout=self._timeout)

    @property
    def http(self) -> httpx.AsyncClient:
        """The connection pool; closed by :meth:`aclose`, opened again by the next call (a router
        started again after its shutdown)."""
        if self._http.is_closed:
            self._http = self._open()
        return self._http

    @property
    def is_closed(self) -> bool:
        """Whether the connection pool is closed (until the next call opens it again)."""
        return self._http.is_closed

    async def aclose(self) -> None:
        """Close the connection pool (the router's shutdown calls this)."""
        await self._http.aclose()

    # ------------------------------------------------------------------ the access token

    async def access_token(self) -> str:
        """A valid access token: the cached one, or a new one when it is about to expire."""
        async with self._token_lock:
            if self._token is not None and self._clock() < self._token_expires_at:
                return self._token
            return await self._fetch_token()

    def forget_token(self, token: str) -> None:
        """Drop ``token`` from the cache (PayPal refused it), unless another was fetched since."""
        if self._token == token:
            self._token = None

    async def _fetch_token(self) -> str:
        operation = "issue an access token"
        try:
            response = await self.http.post(
                TOKEN_PATH,
                data={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {self._credentials}", "Accept": "application/json"},
            )
        except httpx.TransportError as exc:
            raise connection_error(exc, operation=operation) from exc
        body = _json(response)
        if response.status_code >= 400:
            raise translate_error(response.status_code, body, response.headers, operation=operation)
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        if not isinstance(token, str) or not isinstance(expires_in, int) or isinstance(expires_in, bool):
            raise ProviderError(
                "PayPal answered the token request without access_token and expires_in",
                provider=PROVIDER_NAME,
            )
        margin = min(_REFRESH_MARGIN_SECONDS, expires_in / 2)
        self._token = token
        self._token_expires_at = self._clock() + expires_in - margin
        self.tokens_fetched += 1
        return token

    # ------------------------------------------------------------------ calls

    async def get(
        self, path: str, *, operation: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """``GET path``; the JSON object PayPal answered."""
        return await self.request("GET", path, operation=operation, params=params)

    async def post(self, path: str, *, operation: str, request_id: str, json: Any = None) -> dict[str, Any]:
        """``POST path`` with ``PayPal-Request-Id: request_id``; the JSON object answered (``{}`` on 204)."""
        return await self.request("POST", path, operation=operation, json=json, request_id=request_id)

    async def patch(self, path: str, *, operation: str, request_id: str, json: Any) -> dict[str, Any]:
        """``PATCH path`` with a JSON Patch document; ``{}`` (PayPal answers 204)."""
        return await self.request("PATCH", path, operation=operation, json=json, request_id=request_id)

    async def verify_webhook_signature(self, request: Mapping[str, Any]) -> bool:
        """Ask ``POST /v1/notifications/verify-webhook-signature``; True when PayPal answers SUCCESS.

        Args:
            request: The ``verify_webhook_signature`` body (headers, webhook id, parsed event).
        """
        answer = await self.post(
            "/v1/notifications/verify-webhook-signature",
            operation="verify a webhook signature",
            request_id=f"verify-{request.get('transmission_id', '')}"[:_MAX_REQUEST_ID_LENGTH],
            json=dict(request),
        )
        return answer.get("verification_status") == "SUCCESS"

    async def request(
        self,
        method: Method,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Call the API; one new token and one more attempt when PayPal refuses the cached token.

        Args:
            method: The HTTP method.
            path: The path under the API base (``/v2/checkout/orders``).
            operation: What is being done, for error messages (``"create the order"``).
            json: The JSON body.
            params: Query parameters.
            request_id: ``PayPal-Request-Id``; required for ``POST`` and ``PATCH``.

        Returns:
            The JSON object of the answer, ``{}`` when there is none (204).

        Raises:
            ValueError: A mutating call without a request id, or one PayPal would refuse.
            ProviderError: PayPal refused the call or could not be reached (see :mod:`._errors`).
        """
        headers = {"Accept": "application/json", "Prefer": "return=representation"}
        if method != "GET":
            _check_request_id(request_id)
            assert request_id is not None
            headers["PayPal-Request-Id"] = request_id
        for attempt in (1, 2):
            token = await self.access_token()
            headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self.http.request(method, path, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:
                raise connection_error(exc, operation=operation) from exc
            if response.status_code == 401 and attempt == 1:
                logger.info("PayPal refused the cached access token; fetching a new one")
                self.forget_token(token)
                continue
            body = _json(response)
            if response.status_code >= 400:
                raise translate_error(response.status_code, body, response.headers, operation=operation)
            if response.status_code == 204 or not response.content:
                return {}
            if not isinstance(body, dict):
                raise ProviderError(
                    f"PayPal answered an attempt to {operation} with something other than a JSON object",
                    provider=PROVIDER_NAME,
                    details={"http_status": response.status_code},
                )
            return body
        raise AssertionError("unreachable")  # pragma: no cover - the second attempt returns or raises


def _check_request_id(request_id: str | None) -> None:
    if not request_id:
        raise ValueError("every mutating PayPal call needs a PayPal-Request-Id derived from the local row")
    if len(request_id) > _MAX_REQUEST_ID_LENGTH or not request_id.isascii() or not request_id.isprintable():
        raise ValueError(
            f"PayPal-Request-Id must be at most {_MAX_REQUEST_ID_LENGTH} printable ASCII characters"
        )


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
