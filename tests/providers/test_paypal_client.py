"""The PayPal client: token caching and refresh, request ids, errors, amounts."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from fastapi_cashier.errors import (
    AuthenticationRequiredError,
    InvalidProviderRequestError,
    PaymentDeclinedError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ValidationError,
)
from fastapi_cashier.money import Money
from fastapi_cashier.providers.paypal import (
    LIVE_API_BASE,
    SANDBOX_API_BASE,
    PayPalClient,
    from_paypal_amount,
    to_paypal_amount,
)

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A PayPal stand-in answering tokens itself and API calls with ``api``."""

    def __init__(self, api: Handler, *, expires_in: int = 32400) -> None:
        self.api = api
        self.expires_in = expires_in
        self.tokens = 0
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/oauth2/token":
            self.tokens += 1
            assert request.headers["Authorization"].startswith("Basic ")
            assert request.content == b"grant_type=client_credentials"
            return httpx.Response(
                200,
                json={
                    "access_token": f"A21-{self.tokens}",
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                },
            )
        self.requests.append(request)
        return self.api(request)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_client(recorder: Recorder, clock: Clock | None = None) -> PayPalClient:
    return PayPalClient(
        client_id="id",
        client_secret="secret",
        api_base="https://paypal.test",
        transport=httpx.MockTransport(recorder),
        clock=clock or Clock(),
    )


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": "5O190127TN364715T", "status": "CREATED"})


async def test_base_url_by_mode_and_override() -> None:
    assert PayPalClient(client_id="a", client_secret="b").base_url == SANDBOX_API_BASE
    assert PayPalClient(client_id="a", client_secret="b", mode="live").base_url == LIVE_API_BASE
    overridden = PayPalClient(client_id="a", client_secret="b", mode="live", api_base="http://127.0.0.1:9/")
    assert overridden.base_url == "http://127.0.0.1:9"
    await overridden.aclose()
    assert overridden.is_closed


async def test_token_is_cached_until_shortly_before_expiry() -> None:
    recorder = Recorder(ok, expires_in=3600)
    clock = Clock()
    client = make_client(recorder, clock)
    for _ in range(3):
        await client.post(
            "/v2/checkout/orders", operation="create the order", request_id="checkout-1", json={}
        )
    assert recorder.tokens == 1
    assert {r.headers["Authorization"] for r in recorder.requests} == {"Bearer A21-1"}
    clock.now += 3600 - 121  # still more than the margin before expiry
    await client.get("/v2/checkout/orders/1", operation="read the order")
    assert recorder.tokens == 1
    clock.now += 2  # within the margin: a new token
    await client.get("/v2/checkout/orders/1", operation="read the order")
    assert recorder.tokens == 2
    assert recorder.requests[-1].headers["Authorization"] == "Bearer A21-2"
    await client.aclose()


async def test_a_refused_token_is_replaced_once() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer A21-1":
            return httpx.Response(401, json={"error": "invalid_token", "error_description": "expired"})
        return ok(request)

    recorder = Recorder(api)
    client = make_client(recorder)
    body = await client.post("/v2/checkout/orders", operation="create the order", request_id="checkout-1")
    assert body["id"] == "5O190127TN364715T"
    assert recorder.tokens == 2
    # The retried call carries the same request id.
    assert [r.headers["PayPal-Request-Id"] for r in recorder.requests] == ["checkout-1", "checkout-1"]


async def test_a_second_401_is_an_error_naming_the_settings() -> None:
    recorder = Recorder(lambda request: httpx.Response(401, json={"error": "invalid_client"}))
    client = make_client(recorder)
    with pytest.raises(ProviderError) as caught:
        await client.get("/v1/billing/plans/P-1", operation="read the plan")
    assert "PAYMENTS_PAYPAL__CLIENT_ID" in caught.value.message
    assert not caught.value.retriable
    assert recorder.tokens == 2


async def test_refused_credentials_at_the_token_endpoint() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": "invalid_client", "error_description": "Client Authentication failed"}
        )

    client = PayPalClient(
        client_id="x",
        client_secret="y",
        api_base="https://paypal.test",
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(ProviderError) as caught:
        await client.access_token()
    assert caught.value.provider_code == "invalid_client"
    assert "Client Authentication failed" in caught.value.message


async def test_mutating_calls_need_a_request_id() -> None:
    client = make_client(Recorder(ok))
    with pytest.raises(ValueError, match="PayPal-Request-Id"):
        await client.request("POST", "/v2/checkout/orders", operation="create the order")
    with pytest.raises(ValueError, match="at most 108"):
        await client.post("/v2/checkout/orders", operation="create the order", request_id="x" * 109)


async def test_request_headers() -> None:
    recorder = Recorder(ok)
    client = make_client(recorder)
    await client.post("/v2/checkout/orders", operation="create", request_id="checkout-42", json={"a": 1})
    sent = recorder.requests[0]
    assert sent.headers["PayPal-Request-Id"] == "checkout-42"
    assert sent.headers["Prefer"] == "return=representation"
    assert json.loads(sent.content) == {"a": 1}
    await client.get("/v2/checkout/orders/1", operation="read")
    assert "PayPal-Request-Id" not in recorder.requests[1].headers


def error(status: int, name: str, issue: str | None = None, **headers: str) -> Handler:
    body: dict[str, object] = {"name": name, "message": "The request failed.", "debug_id": "f3c8a5e9b1d2"}
    if issue:
        body["details"] = [{"issue": issue, "description": f"{issue} described."}]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return handler


@pytest.mark.parametrize(
    ("handler", "error_type", "retriable", "code"),
    [
        (
            error(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED"),
            PaymentDeclinedError,
            False,
            "INSTRUMENT_DECLINED",
        ),
        (
            error(422, "UNPROCESSABLE_ENTITY", "PAYER_ACTION_REQUIRED"),
            AuthenticationRequiredError,
            False,
            None,
        ),
        (
            error(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED"),
            InvalidProviderRequestError,
            False,
            None,
        ),
        (error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE"), InvalidProviderRequestError, False, None),
        (error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID"), InvalidProviderRequestError, False, None),
        (error(429, "RATE_LIMIT_REACHED", **{"Retry-After": "7"}), ProviderRateLimitError, True, None),
        (error(500, "INTERNAL_SERVER_ERROR"), ProviderConnectionError, True, None),
        (error(503, "SERVICE_UNAVAILABLE"), ProviderConnectionError, True, None),
        (error(403, "NOT_AUTHORIZED", "PERMISSION_DENIED"), ProviderError, False, None),
    ],
)
async def test_error_bodies_map_into_the_error_tree(
    handler: Handler, error_type: type[ProviderError], retriable: bool, code: str | None
) -> None:
    client = make_client(Recorder(handler))
    with pytest.raises(ProviderError) as caught:
        await client.post(
            "/v2/checkout/orders/1/capture", operation="capture the order", request_id="capture-1"
        )
    exc = caught.value
    assert type(exc) is error_type
    assert exc.retriable is retriable
    assert exc.details["debug_id"] == "f3c8a5e9b1d2"
    assert exc.details["provider"] == "paypal"
    assert "capture the order" in exc.message
    if code:
        assert exc.provider_code == code
        assert exc.details["issues"] == [code]
    if isinstance(exc, ProviderRateLimitError):
        assert exc.details["retry_after_seconds"] == 7


async def test_debug_id_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(Recorder(error(500, "INTERNAL_SERVER_ERROR")))
    with caplog.at_level("WARNING", logger="fastapi_cashier"), pytest.raises(ProviderConnectionError):
        await client.get("/v2/checkout/orders/1", operation="read the order")
    assert "f3c8a5e9b1d2" in caplog.text


@pytest.mark.parametrize(
    "fault", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("reset")]
)
async def test_connection_faults_are_retriable(fault: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise fault

    client = make_client(Recorder(handler))
    with pytest.raises(ProviderConnectionError) as caught:
        await client.post("/v2/checkout/orders", operation="create the order", request_id="checkout-1")
    assert caught.value.retriable
    assert caught.value.details["fault"] == type(fault).__name__


@pytest.mark.parametrize(
    ("money", "wire"),
    [
        (Money(1050, "USD"), {"currency_code": "USD", "value": "10.50"}),
        (Money(5, "EUR"), {"currency_code": "EUR", "value": "0.05"}),
        (Money(0, "GBP"), {"currency_code": "GBP", "value": "0.00"}),
        (Money(1050, "JPY"), {"currency_code": "JPY", "value": "1050"}),
        (Money(150000, "HUF"), {"currency_code": "HUF", "value": "1500"}),
        (Money(300, "TWD"), {"currency_code": "TWD", "value": "3"}),
    ],
)
def test_amounts_round_trip(money: Money, wire: dict[str, str]) -> None:
    assert to_paypal_amount(money) == wire
    assert from_paypal_amount(wire) == money


@pytest.mark.parametrize(
    ("money", "field"),
    [
        (Money(1050, "HUF"), "amount"),
        (Money(1, "TWD"), "amount"),
        (Money(100, "KWD"), "currency"),
        (Money(-1, "USD"), "amount"),
    ],
)
def test_amounts_paypal_cannot_take_are_refused(money: Money, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        to_paypal_amount(money)
    assert caught.value.details["field"] == field


def test_inexact_paypal_amounts_are_refused() -> None:
    with pytest.raises(ValidationError):
        from_paypal_amount({"currency_code": "USD", "value": "10.505"})
    with pytest.raises(ValidationError):
        from_paypal_amount({"currency_code": "USD"})


async def test_a_closed_pool_opens_again_for_the_next_call() -> None:
    recorder = Recorder(ok)
    client = make_client(recorder)
    await client.post("/v2/checkout/orders", operation="create", request_id="c-1")
    await client.aclose()
    assert client.is_closed
    await client.post("/v2/checkout/orders", operation="create", request_id="c-2")
    assert not client.is_closed
    assert len(recorder.requests) == 2
    await client.aclose()
