"""The Lemon Squeezy JSON:API client: headers, errors[] translated, faults, create-at-most-once."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from fastapi_cashier.errors import (
    ConfigurationError,
    InvalidProviderRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
)
from fastapi_cashier.providers.lemonsqueezy import JSON_API, LemonSqueezyClient

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> LemonSqueezyClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return LemonSqueezyClient(api_key="ls_test_key", api_base="https://ls.test/v1", http_client=http)


def _resource(type_: str, id_: str, **attributes: object) -> dict[str, object]:
    return {"type": type_, "id": id_, "attributes": attributes}


def _errors(status: int, *errors: dict[str, object], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"errors": list(errors)}, headers=headers)


async def test_requests_carry_the_bearer_key_and_the_json_api_media_type() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": _resource("checkouts", "7", url="https://pay.test/7")})

    client = _client(handler)
    created = await client.post("checkouts", {"data": {"type": "checkouts"}}, operation="create a checkout")

    assert created["id"] == "7"
    request = seen[0]
    assert request.url == "https://ls.test/v1/checkouts"
    assert request.headers["authorization"] == "Bearer ls_test_key"
    assert request.headers["accept"] == JSON_API
    assert request.headers["content-type"] == JSON_API
    assert json.loads(request.content) == {"data": {"type": "checkouts"}}


async def test_a_validation_error_keeps_each_detail_and_pointer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _errors(
            422,
            {
                "status": "422",
                "title": "Unprocessable Entity",
                "detail": "The custom price must be at least 50.",
                "source": {"pointer": "/data/attributes/custom_price"},
            },
        )

    with pytest.raises(InvalidProviderRequestError) as caught:
        await _client(handler).post("checkouts", {}, operation="create a checkout")

    error = caught.value
    assert not error.retriable
    assert "The custom price must be at least 50." in error.message
    assert error.details["http_status"] == 422
    assert error.details["pointers"] == ["/data/attributes/custom_price"]
    assert error.provider == "lemonsqueezy"


async def test_a_rate_limit_is_retriable_and_keeps_the_retry_hint() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _errors(429, {"status": "429", "title": "Too Many Requests"}, headers={"Retry-After": "7"})

    with pytest.raises(ProviderRateLimitError) as caught:
        await _client(handler).get("subscriptions/1", operation="read a subscription")

    assert caught.value.retriable
    assert caught.value.details["retry_after_seconds"] == 7


@pytest.mark.parametrize("hint", ["soon", "-3", "nan"])
async def test_an_unreadable_retry_hint_is_left_out(hint: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _errors(429, {"title": "Too Many Requests"}, headers={"Retry-After": hint})

    with pytest.raises(ProviderRateLimitError) as caught:
        await _client(handler).get("orders/1", operation="read an order")

    assert "retry_after_seconds" not in caught.value.details


async def test_a_server_error_and_a_reset_connection_are_retriable() -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="upstream unavailable")

    def resetting(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    with pytest.raises(ProviderConnectionError) as server_fault:
        await _client(failing).get("orders/1", operation="read an order")
    with pytest.raises(ProviderConnectionError) as network_fault:
        await _client(resetting).get("orders/1", operation="read an order")

    assert server_fault.value.retriable
    assert server_fault.value.details["http_status"] == 503
    assert network_fault.value.retriable
    assert network_fault.value.details["fault"] == "ReadError"


@pytest.mark.parametrize(("status", "names"), [(401, "PAYMENTS_LEMONSQUEEZY__API_KEY"), (403, "STORE_ID")])
async def test_a_refused_key_names_the_setting_to_check(status: int, names: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _errors(status, {"status": str(status), "title": "Unauthenticated", "detail": "No."})

    with pytest.raises(ProviderError) as caught:
        await _client(handler).get("stores/1", operation="read the store")

    assert type(caught.value) is ProviderError
    assert names in caught.value.message
    assert not caught.value.retriable


async def test_an_answer_that_is_not_a_resource_is_a_provider_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy</html>")

    with pytest.raises(ProviderError, match="not JSON"):
        await _client(handler).get("orders/1", operation="read an order")


async def test_a_lost_answer_to_a_create_is_settled_by_the_lookup_not_by_sending_again() -> None:
    posts: list[httpx.Request] = []
    created: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        created.append(_resource("checkouts", "41", url="https://pay.test/41"))
        raise httpx.ReadTimeout("answer lost", request=request)

    async def lookup() -> dict[str, object] | None:
        return created[0] if created else None

    found = await _client(handler).create(
        "checkouts", {"data": {}}, operation="create a checkout", lookup=lookup
    )

    assert found["id"] == "41"
    assert len(posts) == 1


async def test_a_create_that_never_arrived_lets_the_fault_through_for_a_retry() -> None:
    looked_up: list[bool] = []

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def lookup() -> dict[str, object] | None:
        looked_up.append(True)
        return None

    with pytest.raises(ProviderConnectionError):
        await _client(handler).create("checkouts", {}, operation="create a checkout", lookup=lookup)
    assert looked_up == [True]


async def test_a_rate_limited_create_is_not_looked_up() -> None:
    async def lookup() -> dict[str, object] | None:
        raise AssertionError("a 429 created nothing: no look-up is needed")

    def handler(request: httpx.Request) -> httpx.Response:
        return _errors(429, {"title": "Too Many Requests"})

    with pytest.raises(ProviderRateLimitError):
        await _client(handler).create("usage-records", {}, operation="report usage", lookup=lookup)


async def test_iterate_follows_the_pages_and_find_stops_at_the_match() -> None:
    pages: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page[number]"])
        pages.append(request.url.params["page[number]"])
        assert request.url.params["filter[store_id]"] == "9"
        items = [
            _resource("variants", str(number * 10 + index), name=f"v{number}{index}") for index in range(2)
        ]
        return httpx.Response(
            200, json={"data": items, "meta": {"page": {"currentPage": number, "lastPage": 3}}}
        )

    client = _client(handler)
    every = [
        item["id"] async for item in client.iterate("variants", operation="list", filters={"store_id": "9"})
    ]
    assert every == ["10", "11", "20", "21", "30", "31"]

    pages.clear()
    match = await client.find(
        "variants", operation="list", filters={"store_id": "9"}, where=lambda item: item["id"] == "21"
    )
    assert match is not None
    assert match["attributes"] == {"name": "v21"}
    assert pages == ["1", "2"]


async def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="API_KEY"):
        LemonSqueezyClient(api_key="")


async def test_the_pool_it_made_is_closed_and_one_it_was_given_is_not() -> None:
    own = LemonSqueezyClient(api_key="k")
    await own.aclose()
    assert own._http.is_closed

    given = httpx.AsyncClient()
    borrowed = LemonSqueezyClient(api_key="k", http_client=given)
    await borrowed.aclose()
    assert not given.is_closed
    await given.aclose()
