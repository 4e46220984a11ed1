"""The sandbox's memory: objects by id, answers by request id, its clock, its faults and its events."""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Delivery = Callable[[dict[str, str], bytes], Awaitable[Any]]


def paypal_id(prefix: str = "", length: int = 17) -> str:
    """An id shaped like PayPal's (upper-case letters and digits)."""
    alphabet = "ABCDEFGHJKLMNPRSTUVWXY0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def problem(status: int, name: str, issue: str, description: str) -> JSONResponse:
    """PayPal's error body."""
    return JSONResponse(
        {
            "name": name,
            "message": "The requested action could not be performed, semantically incorrect, or failed "
            "business validation."
            if status == 422
            else name.replace("_", " ").capitalize() + ".",
            "debug_id": paypal_id("", 13).lower(),
            "details": [{"issue": issue, "description": description}],
            "links": [],
        },
        status_code=status,
    )


def not_found(what: str) -> JSONResponse:
    return problem(
        404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", f"Specified resource ID does not exist ({what})."
    )


@dataclass
class Fault:
    """A one-shot fault on the next call matching ``method`` and ``path_suffix``.

    ``kind``: ``"500"`` answers 500 without acting; ``"reset"`` acts, then drops the connection
    before the answer (the ambiguous case a retry must settle); ``"429"`` throttles.
    """

    method: str
    path_suffix: str
    kind: str


@dataclass
class SandboxState:
    base_url: str
    client_id: str
    client_secret: str
    webhook_id: str
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    token_lifetime: int = 32400
    tokens: dict[str, datetime] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    sales: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Answers kept by (method, path, PayPal-Request-Id): a repeated request gets the first answer.
    answers: dict[tuple[str, str, str], tuple[int, bytes]] = field(default_factory=dict)
    #: Every API call: (method, path, PayPal-Request-Id or None).
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    #: Orders whose capture is declined or stays pending, set by the hosted page's buttons.
    funding: dict[str, str] = field(default_factory=dict)
    _sequence: itertools.count[int] = field(default_factory=itertools.count)

    def iso_now(self) -> str:
        return rfc3339(self.now)

    def link(self, path: str, rel: str, method: str = "GET") -> dict[str, str]:
        return {"href": f"{self.base_url}{path}", "rel": rel, "method": method}

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def check_token(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ")
        expires = self.tokens.get(token) if header.startswith("Bearer ") else None
        if expires is None or expires <= self.now:
            return JSONResponse(
                {"error": "invalid_token", "error_description": "Token signature verification failed"},
                status_code=401,
            )
        return None

    def issue_token(self) -> str:
        token = "A21AA" + secrets.token_urlsafe(24)
        self.tokens[token] = self.now + timedelta(seconds=self.token_lifetime)
        return token

    def expire_tokens(self) -> None:
        """Make every issued token stale (PayPal revoked or expired them)."""
        self.tokens.clear()


async def idempotent(
    state: SandboxState, request: Request, act: Callable[[], Awaitable[Response]]
) -> Response:
    """Run ``act`` once per ``PayPal-Request-Id``; a repeated id is answered with the first answer."""
    request_id = request.headers.get("paypal-request-id")
    key = (request.method, request.url.path, request_id) if request_id else None
    if key is not None and key in state.answers:
        status, body = state.answers[key]
        return Response(body, status_code=status, media_type="application/json")
    response = await act()
    if key is not None and response.status_code < 500:
        state.answers[key] = (response.status_code, bytes(response.body))
    return response


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type="application/json")
