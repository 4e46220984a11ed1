"""Servers the Stripe tests run on loopback: ``localstripe`` in a subprocess, and an app under uvicorn.

``localstripe`` (GPL-3.0, a test-only tool) is never imported here: it runs in its own
interpreter. Its command-line entry point binds every interface (``::``) and has no option for
the host, so it is started through a few lines that hand its aiohttp application a socket bound
to 127.0.0.1 on a free port, and keep its store in memory (its own start-up would pickle it to a
fixed file under /tmp after every change).
"""

from __future__ import annotations

import importlib.util
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

LAUNCHER = """
import socket
from aiohttp import web
from localstripe import resources
from localstripe.server import app

resources.Store.dump_to_disk = lambda self: None
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(sock.getsockname()[1], flush=True)
web.run_app(app, sock=sock, print=None, access_log=None)
"""

STARTUP_SECONDS = 20.0


def localstripe_installed() -> bool:
    return importlib.util.find_spec("localstripe") is not None


@contextmanager
def run_localstripe() -> Iterator[str]:
    """A localstripe server on 127.0.0.1; its base URL while the block runs."""
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, stderr=errors, text=True
        )
        try:
            assert process.stdout is not None
            port = _read_port(process, errors)
            _wait_for_port(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
                process.kill()
                process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def _read_port(process: subprocess.Popen[str], errors: Any) -> int:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=STARTUP_SECONDS):
            raise RuntimeError("localstripe did not start in time")
    line = process.stdout.readline().strip()
    if not line.isdigit():
        errors.seek(0)
        raise RuntimeError(f"localstripe failed to start: {errors.read()[-2000:]}")
    return int(line)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --------------------------------------------------------------------------- the app under uvicorn


ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


@dataclass
class Delivery:
    """A request to the webhook endpoint, as received, and the status the app answered."""

    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class DeliveryRecorder:
    """ASGI middleware keeping each request to ``path`` (raw headers and body) and its status."""

    app: ASGIApp
    path: str
    deliveries: list[Delivery] = field(default_factory=list)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        answered: dict[str, int] = {}

        async def receive_and_keep() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def send_and_note(message: Any) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            await send(message)

        await self.app(scope, receive_and_keep, send_and_note)
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        self.deliveries.append(Delivery(headers, b"".join(chunks), answered.get("status", 0)))


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 in a thread of its own; its base URL meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
        sock.close()
