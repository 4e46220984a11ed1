"""An in-process PayPal sandbox speaking PayPal's documented wire format, for the adapter's tests.

It answers the calls the adapter makes (OAuth2 token, Orders v2, Payments v2 captures and
refunds, Catalog Products v1, Billing Plans and Subscriptions v1, verify-webhook-signature) in the
shapes of PayPal's OpenAPI documents, serves hosted approval pages a test (or a browser) can
click, renews subscriptions when its clock is advanced, and signs every webhook event it emits
with PayPal's scheme and a certificate it serves itself. It is an ASGI app: tests reach it through
:attr:`PayPalSandbox.transport` (``httpx.ASGITransport`` with fault injection), at
``https://paypal-sandbox.test`` by default.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import billing, orders, subscriptions
from .signing import Signer, make_ca, make_leaf, pem, signed_string
from .state import Delivery, Fault, SandboxState, json_response, not_found, paypal_id

__all__ = ["Fault", "PayPalSandbox"]

Handler = Callable[["PayPalSandbox", Request], Awaitable[Response]]


class PayPalSandbox:
    """The sandbox: its state, its ASGI app, its webhook signing and its transport for httpx clients.

    Args:
        base_url: The address it answers at (also in its links and cert URLs).
        client_id / client_secret: The credentials its token endpoint accepts.
        webhook_id: The id of the one webhook listener it signs for.
    """

    def __init__(
        self,
        *,
        base_url: str = "https://paypal-sandbox.test",
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",  # noqa: S107 - a test credential
        webhook_id: str = "8PT597110X687430LKGECATA",
    ) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        self.state = SandboxState(base_url, client_id, client_secret, webhook_id, now=now)
        self.ca_key, self.ca = make_ca(now - timedelta(days=30))
        self.certificates: dict[str, bytes] = {}
        self.signer = self.make_signer("valid")
        #: Every event emitted, as (headers, raw body), in order.
        self.sent_events: list[tuple[dict[str, str], bytes]] = []
        #: Where emitted events are delivered too (the router's webhook endpoint), when set.
        self.deliver: Delivery | None = None
        self._transmissions: dict[str, tuple[dict[str, str], bytes]] = {}
        self.app = Starlette(routes=self._routes())
        self.transport = FaultyTransport(self)

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def webhook_id(self) -> str:
        return self.state.webhook_id

    @property
    def cert_host(self) -> str:
        return httpx.URL(self.base_url).host

    # ------------------------------------------------------------------ webhooks

    def make_signer(self, kind: str = "valid") -> Signer:
        """A signer whose certificate the sandbox serves: ``valid`` (issued by :attr:`ca`),
        ``expired`` (issued by it, no longer valid) or ``unknown`` (self-signed)."""
        now = self.state.now
        if kind == "expired":
            key, cert = make_leaf(
                self.ca_key,
                self.ca,
                not_before=now - timedelta(days=20),
                not_after=now - timedelta(days=1),
                role=kind,
            )
        elif kind == "unknown":
            key, cert = make_leaf(
                None, None, not_before=now - timedelta(days=1), not_after=now + timedelta(days=365), role=kind
            )
        else:
            key, cert = make_leaf(
                self.ca_key, self.ca, not_before=now - timedelta(days=1), not_after=now + timedelta(days=365)
            )
        cert_id = f"CERT-{paypal_id('', 8).lower()}-{kind}"
        self.certificates[cert_id] = pem(cert, self.ca) if kind != "unknown" else pem(cert)
        return Signer(key, cert_id)

    def sign(self, body: bytes, *, webhook_id: str | None = None, time: str | None = None) -> dict[str, str]:
        """Headers of a delivery of ``body`` signed by the current :attr:`signer`."""
        headers = self.signer.headers(
            base_url=self.base_url,
            webhook_id=webhook_id or self.webhook_id,
            body=body,
            time=time or self.state.iso_now(),
        )
        self._transmissions[headers["PAYPAL-TRANSMISSION-ID"]] = (headers, body)
        return headers

    async def emit(
        self,
        event_type: str,
        resource_type: str,
        resource: dict[str, Any],
        summary: str,
        *,
        version: str | None = "2.0",
    ) -> tuple[dict[str, str], bytes]:
        """Emit an event: sign it, keep it in :attr:`sent_events`, deliver it when :attr:`deliver` is set."""
        event_id = paypal_id("WH-", 17) + "-" + paypal_id("", 17)
        event: dict[str, Any] = {
            "id": event_id,
            "event_version": "1.0",
            "create_time": self.state.iso_now(),
            "resource_type": resource_type,
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
            "links": [
                self.state.link(f"/v1/notifications/webhooks-events/{event_id}", "self"),
                self.state.link(f"/v1/notifications/webhooks-events/{event_id}/resend", "resend", "POST"),
            ],
        }
        if version is not None:
            event["resource_version"] = version
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = self.sign(body)
        self.sent_events.append((headers, body))
        if self.deliver is not None:
            await self.deliver(headers, body)
        return headers, body

    async def advance(self, seconds: float) -> None:
        """Move the sandbox's clock: subscriptions due for renewal are billed."""
        self.state.advance(seconds)
        await subscriptions.renew_due(self)

    async def complete_pending_capture(self, capture_id: str, *, deny: bool = False) -> None:
        await orders.complete_pending_capture(self, capture_id, deny=deny)

    def fail_next_payment(self, subscription_id: str) -> None:
        self.state.subscriptions[subscription_id]["_fail_next"] = True

    # ------------------------------------------------------------------ routes

    def _routes(self) -> list[Route]:
        def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                refused = self.state.check_token(request)
                return refused if refused is not None else await handler(self, request)

            return endpoint

        def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                return await handler(self, request)

            return endpoint

        return [
            Route("/v1/oauth2/token", self._token, methods=["POST"]),
            Route("/v2/checkout/orders", api(orders.create_order), methods=["POST"]),
            Route("/v2/checkout/orders/{id}", api(orders.get_order), methods=["GET"]),
            Route("/v2/checkout/orders/{id}/capture", api(orders.capture_order), methods=["POST"]),
            Route("/v2/payments/captures/{id}", api(orders.get_capture), methods=["GET"]),
            Route("/v2/payments/captures/{id}/refund", api(orders.refund_capture), methods=["POST"]),
            Route("/v2/payments/refunds/{id}", api(orders.get_refund), methods=["GET"]),
            Route("/v1/payments/sale/{id}", api(_get_sale), methods=["GET"]),
            Route("/v1/catalogs/products", api(billing.create_product), methods=["POST"]),
            Route("/v1/catalogs/products/{id}", api(billing.get_product), methods=["GET"]),
            Route("/v1/catalogs/products/{id}", api(billing.patch_product), methods=["PATCH"]),
            Route("/v1/billing/plans", api(billing.create_plan), methods=["POST"]),
            Route("/v1/billing/plans/{id}", api(billing.get_plan), methods=["GET"]),
            Route("/v1/billing/plans/{id}/activate", api(billing.set_plan_status), methods=["POST"]),
            Route("/v1/billing/plans/{id}/deactivate", api(billing.set_plan_status), methods=["POST"]),
            Route(
                "/v1/billing/plans/{id}/update-pricing-schemes",
                api(billing.update_pricing_schemes),
                methods=["POST"],
            ),
            Route("/v1/billing/subscriptions", api(subscriptions.create_subscription), methods=["POST"]),
            Route("/v1/billing/subscriptions/{id}", api(subscriptions.get_subscription), methods=["GET"]),
            Route("/v1/billing/subscriptions/{id}", api(subscriptions.patch_subscription), methods=["PATCH"]),
            Route("/v1/billing/subscriptions/{id}/revise", api(subscriptions.revise), methods=["POST"]),
            Route("/v1/billing/subscriptions/{id}/suspend", api(subscriptions.move), methods=["POST"]),
            Route("/v1/billing/subscriptions/{id}/activate", api(subscriptions.move), methods=["POST"]),
            Route("/v1/billing/subscriptions/{id}/cancel", api(subscriptions.move), methods=["POST"]),
            Route("/v1/notifications/verify-webhook-signature", api(_verify_postback), methods=["POST"]),
            Route("/v1/notifications/certs/{cert_id}", self._certificate, methods=["GET"]),
            Route("/checkoutnow", page(orders.approval_page), methods=["GET"]),
            Route("/checkoutnow/{id}", page(orders.approve), methods=["POST"]),
            Route("/webapps/billing/subscriptions", page(subscriptions.approval_page), methods=["GET"]),
            Route("/webapps/billing/subscriptions/{token}", page(subscriptions.approve), methods=["POST"]),
        ]

    async def _token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{self.state.client_id}:{self.state.client_secret}".encode()).decode()
        form = await request.form()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client Authentication failed"}, 401
            )
        if form.get("grant_type") != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}, 400
            )
        return json_response(
            {
                "scope": "https://uri.paypal.com/services/subscriptions https://uri.paypal.com/services/payments/refund",
                "access_token": self.state.issue_token(),
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": self.state.token_lifetime,
                "nonce": f"{self.state.iso_now()}{paypal_id('', 20)}",
            }
        )

    async def _certificate(self, request: Request) -> Response:
        body = self.certificates.get(request.path_params["cert_id"])
        if body is None:
            return Response(status_code=404)
        return Response(body, media_type="application/x-pem-file")


async def _get_sale(sandbox: PayPalSandbox, request: Request) -> Response:
    """``GET /v1/payments/sale/{id}``: a subscription's payment (Payments v1)."""
    sale = sandbox.state.sales.get(request.path_params["id"])
    return json_response(sale) if sale else not_found("sale")


async def _verify_postback(sandbox: PayPalSandbox, request: Request) -> Response:
    """``verify-webhook-signature``: SUCCESS when the transmission is one the sandbox signed, as sent."""
    payload = await request.json()
    sent = sandbox._transmissions.get(payload.get("transmission_id", ""))
    status = "FAILURE"
    if sent is not None and payload.get("webhook_id") == sandbox.webhook_id:
        headers, body = sent
        same = all(
            payload.get(field) == headers[header]
            for field, header in (
                ("auth_algo", "PAYPAL-AUTH-ALGO"),
                ("cert_url", "PAYPAL-CERT-URL"),
                ("transmission_sig", "PAYPAL-TRANSMISSION-SIG"),
                ("transmission_time", "PAYPAL-TRANSMISSION-TIME"),
            )
        )
        if same and payload.get("webhook_event") == json.loads(body):
            status = "SUCCESS"
    return json_response({"verification_status": status})


class FaultyTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` to the sandbox, recording calls and injecting :class:`Fault` s."""

    def __init__(self, sandbox: PayPalSandbox) -> None:
        self.sandbox = sandbox
        self.inner = httpx.ASGITransport(app=sandbox.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        state = self.sandbox.state
        path = request.url.path
        if path.startswith(("/v1/", "/v2/")) and path != "/v1/oauth2/token" and "/certs/" not in path:
            state.calls.append((request.method, path, request.headers.get("paypal-request-id")))
        fault = next(
            (f for f in state.faults if f.method == request.method and path.endswith(f.path_suffix)), None
        )
        if fault is not None:
            state.faults.remove(fault)
            if fault.kind == "500":
                return httpx.Response(
                    500,
                    json={
                        "name": "INTERNAL_SERVER_ERROR",
                        "message": "An internal server error occurred.",
                        "debug_id": "90957fca61718",
                    },
                )
            if fault.kind == "429":
                return httpx.Response(
                    429,
                    json={
                        "name": "RATE_LIMIT_REACHED",
                        "message": "Too many requests.",
                        "debug_id": "3c1f2a",
                    },
                    headers={"Retry-After": "1"},
                )
            if fault.kind == "connect":
                raise httpx.ConnectError("connection refused", request=request)
            response = await self.inner.handle_async_request(request)
            await response.aread()
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def verify_with_certificate(
    headers: dict[str, str], body: bytes, webhook_id: str, sandbox: PayPalSandbox
) -> bool:
    """Whether a delivery verifies against the certificate the sandbox served (checks the sandbox)."""
    from cryptography import x509

    cert_id = headers["PAYPAL-CERT-URL"].rsplit("/", 1)[-1]
    cert = x509.load_pem_x509_certificates(sandbox.certificates[cert_id])[0]
    message = signed_string(
        headers["PAYPAL-TRANSMISSION-ID"], headers["PAYPAL-TRANSMISSION-TIME"], webhook_id, body
    )
    try:
        cert.public_key().verify(  # type: ignore[union-attr, call-arg]
            base64.b64decode(headers["PAYPAL-TRANSMISSION-SIG"]), message, padding.PKCS1v15(), hashes.SHA256()
        )
    except Exception:
        return False
    return True
