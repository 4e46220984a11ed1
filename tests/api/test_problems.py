"""Problem details: every error on a ``ProblemRoute`` becomes ``application/problem+json``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException
from pydantic import BaseModel, StrictInt

from fastapi_cashier.api.problems import (
    PROBLEM_MEDIA_TYPE,
    ProblemFieldError,
    ProblemRoute,
    problem_response,
    problem_responses,
    status_for,
)
from fastapi_cashier.errors import (
    AuthenticationError,
    AuthenticationRequiredError,
    CashierError,
    ConfigurationError,
    ConflictError,
    CurrencyMismatchError,
    IdempotencyConflictError,
    InvalidProviderRequestError,
    InvalidTransitionError,
    MissingDependencyError,
    NotFoundError,
    PaymentDeclinedError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    RefundExceedsPaymentError,
    SignatureVerificationError,
    UnknownCurrencyError,
    UnsupportedCapabilityError,
    ValidationError,
    WebhookError,
)

pytestmark = pytest.mark.anyio

SECRET_TEXT = "db password is hunter2"

ERRORS: dict[str, tuple[CashierError, int]] = {
    "validation": (ValidationError("amount must be positive", field="amount"), 422),
    "unknown-currency": (UnknownCurrencyError("'XXY' is not an ISO 4217 currency"), 422),
    "currency-mismatch": (CurrencyMismatchError("cannot add EUR to USD"), 422),
    "unsupported": (UnsupportedCapabilityError("manual cannot pause subscriptions"), 422),
    "authentication": (AuthenticationError("token has expired"), 401),
    "permission": (PermissionDeniedError("admin role required"), 403),
    "not-found": (NotFoundError("payment 1 was not found", details={"id": "1"}), 404),
    "conflict": (ConflictError("customer already exists"), 409),
    "idempotency": (IdempotencyConflictError("Idempotency-Key 'k' was already used"), 409),
    "transition": (InvalidTransitionError("cannot move from succeeded to pending"), 409),
    "refund": (RefundExceedsPaymentError("refund exceeds payment"), 409),
    "declined": (PaymentDeclinedError("card declined", provider="fake", provider_code="card_declined"), 402),
    "3ds": (AuthenticationRequiredError("3-D Secure required", provider="fake"), 402),
    "rate-limit": (ProviderRateLimitError("throttled", provider="stripe"), 503),
    "connection": (ProviderConnectionError("timed out", provider="paypal"), 503),
    "provider": (ProviderError("provider failed", provider="stripe"), 502),
    "provider-invalid": (InvalidProviderRequestError("bad request", provider="stripe"), 502),
    "signature": (SignatureVerificationError("signature mismatch"), 400),
    "webhook": (WebhookError("cannot accept delivery"), 400),
    "configuration": (ConfigurationError("stripe is not configured"), 500),
    "missing-dependency": (MissingDependencyError("stripe", "stripe"), 500),
}


class CheckoutBody(BaseModel):
    amount: StrictInt
    currency: str


def refuse_credentials() -> None:
    raise AuthenticationError("missing bearer token")


seen_by_dependency: list[BaseException | None] = []


async def unit_of_work() -> AsyncIterator[None]:
    """A ``yield`` dependency that records whether the request failed (a session would roll back)."""
    try:
        yield
    except Exception as exc:
        seen_by_dependency.append(exc)
        raise
    seen_by_dependency.append(None)


def build_app() -> FastAPI:
    router = APIRouter(route_class=ProblemRoute)

    @router.get("/errors/{kind}")
    async def raise_error(kind: str) -> None:
        raise ERRORS[kind][0]

    @router.post("/checkout", responses=problem_responses(401, 422))
    async def checkout(body: CheckoutBody) -> dict[str, Any]:
        return {"amount": body.amount, "currency": body.currency}

    @router.get("/private", dependencies=[Depends(refuse_credentials)])
    async def private() -> dict[str, str]:
        return {"secret": "never returned"}

    @router.get("/search")
    async def search(limit: int = 10) -> dict[str, int]:
        return {"limit": limit}

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError(SECRET_TEXT)

    @router.get("/http/{status}")
    async def http_error(status: int) -> None:
        raise HTTPException(status, detail="teapot says no", headers={"X-Reason": "test"})

    @router.get("/grouped")
    async def grouped() -> None:
        raise ExceptionGroup("task group", [NotFoundError("plan 7 was not found")])

    @router.get("/uow-fails", dependencies=[Depends(unit_of_work)])
    async def uow_fails() -> None:
        raise ConflictError("customer already exists")

    @router.get("/uow-ok", dependencies=[Depends(unit_of_work)])
    async def uow_ok() -> dict[str, bool]:
        return {"ok": True}

    app = FastAPI()
    app.include_router(router, prefix="/billing")

    @app.get("/host/missing")
    async def host_missing() -> None:
        raise HTTPException(404, detail="no such booking")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:fastapi-cashier:problem:{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


@pytest.mark.parametrize("kind", sorted(ERRORS))
async def test_library_errors_become_problems(client: httpx.AsyncClient, kind: str) -> None:
    error, status = ERRORS[kind]
    response = await client.get(f"/billing/errors/{kind}")
    body = assert_problem(response, status, error.code.value)
    assert body["detail"] == error.message
    assert body["instance"] == f"/billing/errors/{kind}"
    field = error.details.get("field")
    if field is not None:
        # A domain validation error names its field like request validation does, and its entry
        # has every member the documented ProblemFieldError requires.
        assert body["errors"] == [
            {"field": field, "location": "domain", "message": error.message, "type": error.code.value}
        ]
        ProblemFieldError.model_validate(body["errors"][0])
    else:
        assert "errors" not in body
    if error.details:
        assert body["details"] == error.details
    else:
        assert "details" not in body


@pytest.mark.parametrize(
    ("error", "status"),
    [(error, status) for error, status in ERRORS.values()] + [(CashierError("base"), 500)],
)
def test_status_for_walks_the_mro(error: CashierError, status: int) -> None:
    assert status_for(error) == status


async def test_titles_are_reason_phrases(client: httpx.AsyncClient) -> None:
    assert (await client.get("/billing/errors/not-found")).json()["title"] == "Not Found"
    assert (await client.get("/billing/errors/declined")).json()["title"] == "Payment Required"


async def test_authentication_errors_ask_for_a_bearer_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/billing/errors/authentication")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "www-authenticate" not in (await client.get("/billing/errors/permission")).headers


async def test_a_failing_dependency_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/billing/private")
    body = assert_problem(response, 401, "authentication_required")
    assert body["detail"] == "missing bearer token"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("kind", ["rate-limit", "connection"])
async def test_retriable_provider_errors_say_when_to_retry(client: httpx.AsyncClient, kind: str) -> None:
    response = await client.get(f"/billing/errors/{kind}")
    assert response.headers["retry-after"] == "1"


async def test_provider_details_are_kept(client: httpx.AsyncClient) -> None:
    body = (await client.get("/billing/errors/declined")).json()
    assert body["details"] == {"provider": "fake", "provider_code": "card_declined"}


@pytest.mark.parametrize(
    "amount",
    [pytest.param(12.5, id="float"), pytest.param("1250", id="string"), pytest.param(None, id="missing")],
)
async def test_invalid_amount_is_named(client: httpx.AsyncClient, amount: object) -> None:
    payload: dict[str, object] = {"currency": "EUR"}
    if amount is not None:
        payload["amount"] = amount
    response = await client.post("/billing/checkout", json=payload)
    body = assert_problem(response, 422, "validation_error")
    assert [error["field"] for error in body["errors"]] == ["amount"]
    assert body["errors"][0]["location"] == "body"
    assert body["errors"][0]["message"]
    assert body["detail"].startswith("invalid amount: ")


@pytest.mark.parametrize(
    ("amount", "currency", "example"),
    [
        (12.5, "EUR", "12.5 EUR is 1250"),
        (19.99, "eur", "19.99 EUR is 1999"),
        ("19.99", "USD", "19.99 USD is 1999"),
        (1.5, "JPY", "1999 JPY is 1999"),
        (0.125, "KWD", "0.125 KWD is 125"),
        (12.5, "???", "12.5 EUR is 1250"),
        ("twelve", "EUR", "19.99 EUR is 1999"),
    ],
)
async def test_a_decimal_amount_is_explained_as_minor_units(
    client: httpx.AsyncClient, amount: object, currency: str, example: str
) -> None:
    response = await client.post("/billing/checkout", json={"amount": amount, "currency": currency})
    body = assert_problem(response, 422, "validation_error")
    [amount_error] = [error for error in body["errors"] if error["field"] == "amount"]
    assert amount_error["message"] == f"amounts are integers in minor units of the currency: {example}"
    assert amount_error["type"] == "int_type"
    assert f"invalid amount: amounts are integers in minor units of the currency: {example}" in body["detail"]


async def test_a_null_amount_keeps_pydantics_message(client: httpx.AsyncClient) -> None:
    response = await client.post("/billing/checkout", json={"amount": None, "currency": "EUR"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["message"] == "Input should be a valid integer"


async def test_every_invalid_field_is_listed(client: httpx.AsyncClient) -> None:
    response = await client.post("/billing/checkout", json={"amount": "x"})
    body = assert_problem(response, 422, "validation_error")
    assert sorted(error["field"] for error in body["errors"]) == ["amount", "currency"]
    assert "invalid amount" in body["detail"]
    assert "invalid currency" in body["detail"]


async def test_valid_body_passes(client: httpx.AsyncClient) -> None:
    response = await client.post("/billing/checkout", json={"amount": 1250, "currency": "EUR"})
    assert response.status_code == 200
    assert response.json() == {"amount": 1250, "currency": "EUR"}


async def test_malformed_json_is_a_validation_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/billing/checkout", content=b'{"amount": 12', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "body"
    assert body["errors"][0]["type"] == "json_invalid"
    assert body["detail"].startswith("invalid body: ")


async def test_missing_body_is_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/billing/checkout")
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "body"


async def test_a_body_that_is_not_utf8_is_malformed_json(client: httpx.AsyncClient) -> None:
    # FastAPI's own answer is a bare 400 that the routes do not document.
    response = await client.post(
        "/billing/checkout", content=b'{"amount": "\xff"}', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["type"] == "json_invalid"
    assert body["errors"][0]["location"] == "body"


async def test_a_method_the_route_does_not_serve_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.request("TRACE", "/billing/checkout")
    body = assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    assert "TRACE" in body["detail"]
    assert body["instance"] == "/billing/checkout"


async def test_a_declared_parameter_with_a_nul_character_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/billing/errors/%00")
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0] == {
        "field": "kind",
        "location": "path",
        "message": "must not contain NUL (U+0000) characters",
        "type": "nul_character",
    }
    # A parameter the route does not declare is never read, so it is not refused.
    assert (await client.get("/billing/uow-ok?unused=%00")).status_code == 200


async def test_query_errors_name_the_parameter(client: httpx.AsyncClient) -> None:
    response = await client.get("/billing/search", params={"limit": "ten"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["field"] == "limit"
    assert body["errors"][0]["location"] == "query"


async def test_unexpected_errors_are_logged_and_hidden(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="fastapi_cashier"):
        response = await client.get("/billing/crash")
    body = assert_problem(response, 500, "internal_error")
    assert SECRET_TEXT not in response.text
    assert "RuntimeError" not in response.text
    assert any(record.exc_info and SECRET_TEXT in str(record.exc_info[1]) for record in caplog.records)
    assert all(record.name == "fastapi_cashier" for record in caplog.records)
    assert body["detail"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "authentication_required"),
        (403, "permission_denied"),
        (404, "not_found"),
        (405, "method_not_allowed"),
        (413, "payload_too_large"),
        (418, "http_error"),
    ],
)
async def test_http_exceptions_become_problems(client: httpx.AsyncClient, status: int, code: str) -> None:
    response = await client.get(f"/billing/http/{status}")
    body = assert_problem(response, status, code)
    assert body["detail"] == "teapot says no"
    assert response.headers["x-reason"] == "test"


async def test_single_error_groups_are_unwrapped(client: httpx.AsyncClient) -> None:
    response = await client.get("/billing/grouped")
    assert_problem(response, 404, "not_found")


async def test_yield_dependencies_see_the_failure(client: httpx.AsyncClient) -> None:
    seen_by_dependency.clear()
    response = await client.get("/billing/uow-fails")
    assert_problem(response, 409, "conflict")
    assert len(seen_by_dependency) == 1
    assert isinstance(seen_by_dependency[0], ConflictError)

    seen_by_dependency.clear()
    assert (await client.get("/billing/uow-ok")).status_code == 200
    assert seen_by_dependency == [None]


async def test_host_routes_keep_fastapi_errors(client: httpx.AsyncClient) -> None:
    response = await client.get("/host/missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "no such booking"}


def test_problem_response_leaves_errors_out_unless_given() -> None:
    response = problem_response(status=409, code="conflict", title="Conflict", detail="taken")
    assert response.media_type == PROBLEM_MEDIA_TYPE
    assert b'"errors"' not in response.body
    with_errors = problem_response(
        status=422, code="validation_error", title="Unprocessable Content", detail="bad", errors=[]
    )
    assert b'"errors":[]' in with_errors.body


def test_problem_response_extra_cannot_replace_standard_members() -> None:
    response = problem_response(
        status=404, code="not_found", detail="gone", extra={"status": 200, "details": {"id": "1"}}
    )
    assert b'"status":404' in response.body
    assert b'"details":{"id":"1"}' in response.body


def test_openapi_documents_problem_bodies() -> None:
    schema = build_app().openapi()
    responses = schema["paths"]["/billing/checkout"]["post"]["responses"]
    for status in ("401", "422"):
        content = responses[status]["content"]
        assert list(content) == [PROBLEM_MEDIA_TYPE]
        problem = content[PROBLEM_MEDIA_TYPE]["schema"]
        assert {"type", "title", "status", "code"} <= set(problem["required"])
        assert "$ref" not in str(problem)
    assert responses["422"]["description"] == HTTPStatus(422).phrase


def test_routes_with_parameters_document_their_422_as_a_problem() -> None:
    # FastAPI's default 422 is a plain-JSON HTTPValidationError; a ProblemRoute never sends that.
    paths = build_app().openapi()["paths"]
    for path, method in (("/billing/search", "get"), ("/billing/errors/{kind}", "get")):
        assert list(paths[path][method]["responses"]["422"]["content"]) == [PROBLEM_MEDIA_TYPE]
    assert "422" not in paths["/billing/crash"]["get"]["responses"]
