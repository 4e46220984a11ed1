"""An in-process VIES: the REST interface's ``check-vat-number`` answering valid, invalid or unavailable.

The answers follow VIES's documented JSON: ``valid``, ``requestDate``, ``requestIdentifier``
(only when a requester is named), ``name``, ``address``; when a member state's register is down,
HTTP 200 with ``userError: "MS_UNAVAILABLE"`` and ``valid: false`` (which must not be read as
"invalid"), or a 500 with ``errorWrappers``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class VIESState:
    """Which numbers are registered, which states are down, and the requests received."""

    valid: dict[str, tuple[str, str]] = field(default_factory=dict)
    unavailable_states: set[str] = field(default_factory=set)
    unavailable_numbers: set[str] = field(default_factory=set)
    broken_states: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def vies_app(state: VIESState, prefix: str = "/rest-api") -> FastAPI:
    app = FastAPI()

    @app.post(f"{prefix}/check-vat-number")
    async def check(request: Request) -> JSONResponse:
        body = await request.json()
        state.requests.append(body)
        country, number = body["countryCode"], body["vatNumber"]
        if country in state.broken_states:
            return JSONResponse(
                {"actionSucceed": False, "errorWrappers": [{"error": "SERVICE_UNAVAILABLE"}]}, 500
            )
        if country in state.unavailable_states or country + number in state.unavailable_numbers:
            return JSONResponse(
                {"countryCode": country, "vatNumber": number, "valid": False, "userError": "MS_UNAVAILABLE"}
            )
        registered = state.valid.get(country + number)
        answer: dict[str, Any] = {
            "countryCode": country,
            "vatNumber": number,
            "requestDate": "2026-12-06T10:15:00.000Z",
            "valid": registered is not None,
            "userError": "VALID" if registered is not None else "INVALID",
            "name": registered[0] if registered else "---",
            "address": registered[1] if registered else "---",
        }
        if body.get("requesterNumber"):
            answer["requestIdentifier"] = f"WAPIAAAAZ{next(state._counter):07d}"
        return JSONResponse(answer)

    return app
