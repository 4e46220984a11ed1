"""The app the multi-process and crash tests serve with uvicorn: the router, configured from the environment.

``python -m uvicorn tests.reliability.app:create_app --factory`` with ``PAYMENTS_...`` variables for
the settings. Two additions for the tests:

* every response carries ``X-Worker-Pid``, the id of the process that served it, and with
  ``CASHIER_TEST_SERVER_ID`` set, ``X-Server-Id`` with its value (which server answered);
* with ``CASHIER_TEST_DIE_ON_EVENT=<event id>`` the process dies (``os._exit(1)``, no clean-up, no
  rollback, like a ``kill -9``) inside ``EventApplier.apply`` of that event, after the apply has
  written its rows to the open transaction and before the commit;
* with ``CASHIER_TEST_FAIL_ON_EVENT=<event id>`` ``EventApplier.apply`` of that event raises at the
  same point (an apply that fails: a bug, a constraint, a provider object not there yet).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_cashier import PaymentsRouter, PaymentsSettings
from fastapi_cashier.billing.events import EventApplier
from fastapi_cashier.providers.base import ProviderEvent

__all__ = [
    "DIE_ON_EVENT_ENV",
    "FAIL_ON_EVENT_ENV",
    "PID_HEADER",
    "SERVER_ID_ENV",
    "SERVER_ID_HEADER",
    "WorkerPid",
    "create_app",
]

PID_HEADER = "X-Worker-Pid"
SERVER_ID_HEADER = "X-Server-Id"
SERVER_ID_ENV = "CASHIER_TEST_SERVER_ID"
DIE_ON_EVENT_ENV = "CASHIER_TEST_DIE_ON_EVENT"
FAIL_ON_EVENT_ENV = "CASHIER_TEST_FAIL_ON_EVENT"


class WorkerPid:
    """Pure ASGI middleware adding the serving process's id (and the server's id) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(PID_HEADER.lower().encode(), str(os.getpid()).encode())]
        server_id = os.environ.get(SERVER_ID_ENV)
        if server_id:
            self.headers.append((SERVER_ID_HEADER.lower().encode(), server_id.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_pid)


def _break_applying(event_id: str, *, die: bool) -> None:
    original = EventApplier.apply

    async def apply(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
        outcome = await original(self, event, *located)
        if event.id == event_id:
            await self.session.flush()  # the rows are written, the transaction is open
            if die:
                os._exit(1)
            raise RuntimeError(f"injected failure after applying {event_id}")
        return outcome

    EventApplier.apply = apply  # type: ignore[method-assign]


def create_app() -> FastAPI:
    """The app: ``PaymentsRouter(PaymentsSettings())`` mounted at ``/billing``."""
    doomed = os.environ.get(DIE_ON_EVENT_ENV)
    if doomed:
        _break_applying(doomed, die=True)
    failing = os.environ.get(FAIL_ON_EVENT_ENV)
    if failing:
        _break_applying(failing, die=False)
    app = FastAPI()
    app.include_router(PaymentsRouter(PaymentsSettings()), prefix="/billing")
    app.add_middleware(WorkerPid)
    return app
