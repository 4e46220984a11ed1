"""RFC 9457 problem details for the library's own routes.

A library router cannot register app-wide exception handlers without changing the host's other
routes, so the conversion happens in :class:`ProblemRoute`, the ``route_class`` of the payments
router: whatever a request on one of its routes raises (dependencies included) is answered as an
``application/problem+json`` document. The host's own routes keep FastAPI's default errors.

A problem document looks like::

    {
      "type": "urn:fastapi-cashier:problem:refund_exceeds_payment",
      "title": "Conflict",
      "status": 409,
      "detail": "refund of 5000 exceeds the 3000 left on the payment",
      "code": "refund_exceeds_payment",
      "instance": "/billing/admin/payments/.../refunds",
      "details": {"payment_id": "..."}
    }

Request validation failures add ``errors: [{"field", "location", "message", "type"}]``; a domain
validation error names its field the same way, with ``location: "domain"`` and its code as ``type``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, params
from fastapi.dependencies.utils import get_flat_params
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import (
    AuthenticationError,
    AuthenticationRequiredError,
    CashierError,
    ConfigurationError,
    ConflictError,
    ErrorCode,
    InsufficientCreditsError,
    NotFoundError,
    PaymentDeclinedError,
    PermissionDeniedError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    RateLimitExceededError,
    SignatureVerificationError,
    SubscriptionRequiredError,
    ValidationError,
    WebhookError,
)
from ..money import minor_units_hint

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "CashierHTTPException",
    "Problem",
    "ProblemFieldError",
    "ProblemRoute",
    "exception_to_problem",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
    "status_for",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:fastapi-cashier:problem:"

logger = logging.getLogger("fastapi_cashier")

# Looked up along the exception's MRO, so the most specific class wins
# (PaymentDeclinedError before ProviderError, SignatureVerificationError before WebhookError).
_STATUS_BY_ERROR: dict[type[CashierError], int] = {
    ValidationError: 422,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    SubscriptionRequiredError: 402,
    NotFoundError: 404,
    ConflictError: 409,
    InsufficientCreditsError: 402,
    RateLimitExceededError: 429,
    PaymentDeclinedError: 402,
    AuthenticationRequiredError: 402,
    ProviderRateLimitError: 503,
    ProviderConnectionError: 503,
    ProviderError: 502,
    SignatureVerificationError: 400,
    WebhookError: 400,
    ConfigurationError: 500,
}

_HTTP_ERROR_CODES: dict[int, str] = {
    401: ErrorCode.AUTHENTICATION_REQUIRED.value,
    403: ErrorCode.PERMISSION_DENIED.value,
    404: ErrorCode.NOT_FOUND.value,
    405: "method_not_allowed",
    413: "payload_too_large",
}

# Request-validation locations FastAPI puts first in an error's ``loc``.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
# How many field errors the human ``detail`` names before summarising the rest.
_DETAIL_ERRORS = 5
_INTERNAL_DETAIL = "The server failed to handle the request; the error has been logged."


class ProblemFieldError(BaseModel):
    """One refused request field."""

    field: str = Field(description="Dotted path of the field, e.g. `amount` or `tiers.0.up_to`.")
    location: str = Field(
        description="Where the field was sent (body, query, path, header or cookie), or `domain` for a "
        "rule the request broke as a whole."
    )
    message: str = Field(description="Why the value was refused.")
    type: str = Field(description="Machine-readable kind of the failure, e.g. `int_type`, `missing`.")


class Problem(BaseModel):
    """An RFC 9457 problem document, as served with ``application/problem+json``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="`urn:fastapi-cashier:problem:<code>`.")
    title: str = Field(description="The HTTP reason phrase of `status`.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong in this occurrence.")
    code: str = Field(description="Stable machine code; clients branch on this.")
    instance: str | None = Field(default=None, description="The request path that failed.")
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="Refused fields (request validation failures only)."
    )
    details: dict[str, Any] | None = Field(default=None, description="Extra machine-readable context.")


def status_for(exc: CashierError) -> int:
    """The HTTP status a library error is answered with (500 for anything unmapped)."""
    for cls in type(exc).__mro__:
        status = _STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return 500


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    *,
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """An ``application/problem+json`` response.

    Args:
        status: The HTTP status code.
        code: The stable machine code (an :class:`~fastapi_cashier.errors.ErrorCode` value or an
            HTTP-level code such as ``method_not_allowed``).
        title: Defaults to the status's HTTP reason phrase.
        detail: A sentence about this occurrence, safe to show to the client.
        instance: The request path.
        errors: Field errors; the member is left out when ``None``.
        headers: Extra response headers (``WWW-Authenticate``, ``Retry-After`` ...).
        extra: More top-level members (e.g. ``details``); cannot replace the standard ones.
    """
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{code}",
        "title": title or _reason(status),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    for name, value in (extra or {}).items():
        body.setdefault(name, jsonable_encoder(value))
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def _is_decimal_amount(kind: str, loc: list[str], value: object) -> bool:
    """An ``...amount`` field given as a decimal number or a numeric string."""
    if kind not in ("int_type", "int_from_float", "int_parsing") or not loc:
        return False
    return loc[-1].endswith("amount") and isinstance(value, float | str)


def _validation_problem(exc: RequestValidationError, instance: str | None) -> Response:
    errors: list[dict[str, Any]] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        location = loc[0] if loc and loc[0] in _LOCATIONS else "body"
        rest = loc[1:] if loc and loc[0] in _LOCATIONS else loc
        kind = str(error.get("type", "value_error"))
        message = str(error.get("msg", "invalid value"))
        if kind == "json_invalid":
            # The loc of a JSON syntax error is a character offset, not a field.
            rest = []
            reason = (error.get("ctx") or {}).get("error")
            message = f"{message} ({reason})" if reason else message
        field = ".".join(rest) if rest else location
        if _is_decimal_amount(kind, rest, error.get("input")):
            currency = exc.body.get("currency") if isinstance(exc.body, dict) else None
            message = minor_units_hint(error.get("input"), currency or "EUR")
        errors.append({"field": field, "location": location, "message": message, "type": kind})
    named = [f"invalid {error['field']}: {error['message']}" for error in errors[:_DETAIL_ERRORS]]
    if len(errors) > _DETAIL_ERRORS:
        named.append(f"and {len(errors) - _DETAIL_ERRORS} more")
    return problem_response(
        status=422,
        code=ErrorCode.VALIDATION_ERROR.value,
        detail="; ".join(named) or "the request is invalid",
        instance=instance,
        errors=errors,
    )


def _headers_for(exc: CashierError) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, ProviderRateLimitError | ProviderConnectionError):
        headers["Retry-After"] = "1"
    if isinstance(exc, RateLimitExceededError):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    return headers


class CashierHTTPException(HTTPException):
    """A library error raised by a dependency that host routes use too.

    The library's own routes answer it as a problem document with the error's stable ``code``; a
    host's route (where no ``ProblemRoute`` runs) gets FastAPI's default answer with the right
    status, headers and ``{"detail": message}`` instead of a 500.
    """

    def __init__(self, error: CashierError) -> None:
        super().__init__(
            status_code=status_for(error), detail=error.message, headers=_headers_for(error) or None
        )
        self.error = error


def _cashier_problem(exc: CashierError, instance: str | None) -> Response:
    status = status_for(exc)
    headers = _headers_for(exc)
    if status >= 500:
        if isinstance(exc, ProviderError):
            logger.warning("provider error on %s: %s (%s)", instance, exc.message, exc.code.value)
        else:
            logger.error("error on %s: %s", instance, exc.message, exc_info=exc)
    # A domain validation error names its field the same way request validation does.
    field = exc.details.get("field") if isinstance(exc, ValidationError) else None
    errors = (
        [{"field": field, "location": "domain", "message": exc.message, "type": exc.code.value}]
        if field
        else None
    )
    return problem_response(
        status=status,
        code=exc.code.value,
        detail=exc.message,
        instance=instance,
        errors=errors,
        headers=headers,
        extra={"details": exc.details} if exc.details else None,
    )


def _is_undecodable_body(exc: HTTPException) -> bool:
    # FastAPI answers a JSON body that is not UTF-8 with a bare 400 ("There was an error parsing
    # the body"); any other malformed JSON is a 422 ``json_invalid``. Both are malformed JSON.
    return exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError)


def _undecodable_body_problem(exc: HTTPException, instance: str | None) -> Response:
    reason = str(exc.__cause__)
    error = {"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "ctx": {"error": reason}}
    return _validation_problem(RequestValidationError([error]), instance)


def _http_problem(exc: HTTPException, instance: str | None) -> Response:
    status = exc.status_code
    if status < 200 or status in (204, 304):
        # These statuses cannot carry a body.
        return Response(status_code=status, headers=exc.headers)
    extra: dict[str, Any] | None = None
    if isinstance(exc.detail, str):
        detail = exc.detail
    else:
        detail = _reason(status)
        extra = {"details": exc.detail} if exc.detail is not None else None
    return problem_response(
        status=status,
        code=_HTTP_ERROR_CODES.get(status, "http_error"),
        detail=detail,
        instance=instance,
        headers=exc.headers,
        extra=extra,
    )


def _unwrap(exc: Exception) -> Exception:
    # Task groups wrap a single failure in an ExceptionGroup; answer for the failure itself.
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def exception_to_problem(exc: Exception, *, instance: str | None = None) -> Response:
    """The problem response for any exception; unexpected ones are logged and answered 500.

    Args:
        exc: What was raised while handling the request.
        instance: The request path, echoed as the problem's ``instance``.
    """
    exc = _unwrap(exc)
    if isinstance(exc, CashierError):
        return _cashier_problem(exc, instance)
    if isinstance(exc, CashierHTTPException):
        return _cashier_problem(exc.error, instance)
    if isinstance(exc, RequestValidationError):
        return _validation_problem(exc, instance)
    if isinstance(exc, HTTPException):
        if _is_undecodable_body(exc):
            return _undecodable_body_problem(exc, instance)
        return _http_problem(exc, instance)
    logger.exception("unhandled error on %s", instance, exc_info=exc)
    return problem_response(
        status=500, code=ErrorCode.INTERNAL_ERROR.value, detail=_INTERNAL_DETAIL, instance=instance
    )


async def _close_dependencies(request: Request, exc: Exception) -> Exception:
    """Close the request's ``yield`` dependencies with ``exc``, as FastAPI would without us.

    FastAPI's own handlers run after the exception has travelled through the dependencies'
    exit stacks, so a session dependency rolls back. Answering inside the route handler would
    make them exit cleanly (and commit), so they are unwound here first. A dependency that
    raises another exception on the way out (e.g. an ``HTTPException``) is answered instead.
    """
    for key in ("fastapi_function_astack", "fastapi_inner_astack"):
        stack = request.scope.get(key)
        if not isinstance(stack, AsyncExitStack):
            continue
        try:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
        except Exception as raised:
            exc = raised
    return exc


def _declared_parameters(route: APIRoute) -> frozenset[tuple[str, str]]:
    """``(location, name)`` of the query and path parameters the route declares."""
    return frozenset(
        (field.field_info.in_.value, field.alias)
        for field in get_flat_params(route.dependant)
        if isinstance(field.field_info, params.Param)
        and field.field_info.in_ in (params.ParamTypes.query, params.ParamTypes.path)
    )


def _refuse_nul_parameters(request: Request, declared: frozenset[tuple[str, str]]) -> None:
    """422 for a declared query or path parameter containing U+0000, before anything reads it.

    PostgreSQL cannot compare text containing NUL: the driver fails, so a filter such as
    ``?reference=a%00b`` would answer 500 there (and 200 on SQLite). Refused on every database alike.
    """
    named = [("query", name, value) for name, value in request.query_params.multi_items()]
    named += [("path", name, value) for name, value in request.path_params.items()]
    errors = [
        {
            "type": "nul_character",
            "loc": (location, name),
            "msg": "must not contain NUL (U+0000) characters",
            "input": value,
        }
        for location, name, value in named
        if (location, name) in declared and isinstance(value, str) and "\x00" in value
    ]
    if errors:
        raise RequestValidationError(errors)


class ProblemRoute(APIRoute):
    """An ``APIRoute`` whose errors are RFC 9457 problems.

    Use it as ``APIRouter(route_class=ProblemRoute)``. Every exception raised while handling a
    request on the route, during dependency resolution included, is answered with
    ``application/problem+json``:

    * :class:`~fastapi_cashier.errors.CashierError`: :func:`status_for`, its ``code``, its message
      and ``details``; ``WWW-Authenticate: Bearer`` on 401, ``Retry-After`` when a provider is
      throttled or unreachable;
    * ``RequestValidationError`` (malformed JSON included, a body that is not UTF-8 too): 422
      ``validation_error`` with ``errors``;
    * ``HTTPException``: its status and headers;
    * anything else: logged with its traceback, answered 500 ``internal_error`` without details.

    A declared query or path parameter containing U+0000 is a 422 (PostgreSQL cannot compare
    such text). A method the route does not serve is a 405 ``method_not_allowed`` problem with
    ``Allow``. A route with parameters or a body documents its 422 as a problem (FastAPI's
    default documents a plain JSON ``HTTPValidationError`` instead).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        takes_input = bool(get_flat_params(self.dependant)) or self.body_field is not None
        documented = {str(status).upper() for status in self.responses}
        if takes_input and documented.isdisjoint({"422", "4XX", "DEFAULT"}):
            self.responses = {**self.responses, **problem_responses(422)}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette raises its 405 before the endpoint runs (so outside ``handle_with_problems``)
        # when the path matches but the method does not, and the host's handlers would answer
        # it with plain JSON.
        if self.methods and scope["method"] not in self.methods:
            allowed = ", ".join(sorted(self.methods))
            response = problem_response(
                status=405,
                code=_HTTP_ERROR_CODES[405],
                detail=f"{scope['method']} is not allowed here; allowed: {allowed}",
                instance=Request(scope).url.path,
                headers={"Allow": allowed},
            )
            await response(scope, receive, send)
            return
        await super().handle(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared = _declared_parameters(self)

        async def handle_with_problems(request: Request) -> Response:
            try:
                _refuse_nul_parameters(request, declared)
                return await handler(request)
            except Exception as exc:
                raised = await _close_dependencies(request, exc)
                return exception_to_problem(raised, instance=request.url.path)

        return handle_with_problems


def install_problem_handlers(app: FastAPI) -> None:
    """Answer the host app's own routes with the same problem documents as the router's.

    The library's dependencies (``payments.current_customer``, ``require_feature``,
    ``rate_limit``, ...) then answer a host route with ``application/problem+json`` and their
    stable ``code`` (``402 subscription_required``, ``429 rate_limited`` ...) instead of FastAPI's
    plain ``{"detail": ...}``; the host's own ``HTTPException`` and request validation errors
    become problems too. Exceptions the host does not raise on purpose stay 500s, answered by
    the host's server.

    Example:
        ``install_problem_handlers(app)`` once, after ``app = FastAPI()``.
    """

    async def handle(request: Request, exc: Exception) -> Response:
        return exception_to_problem(exc, instance=request.url.path)

    for kind in (CashierError, HTTPException, RequestValidationError):
        app.add_exception_handler(kind, handle)


@functools.cache
def _problem_schema() -> dict[str, Any]:
    # Inline the nested models: an OpenAPI ``responses`` entry cannot carry ``$defs``.
    schema = Problem.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI ``responses=`` mapping documenting problem bodies for ``statuses``.

    Example:
        ``@router.post("/refunds", responses=problem_responses(404, 409, 422))``
    """
    return {
        status: {
            "description": _reason(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _problem_schema()}},
        }
        for status in statuses
    }
