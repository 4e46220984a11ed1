"""Run tests/reliability/app.py under uvicorn in a subprocess, on a free port of 127.0.0.1.

The port is found by binding port 0 and closing the socket, so another process may take it before
uvicorn binds it: uvicorn then exits at start-up saying the address is in use, and the server is
started again on another port. Every answer names the server that gave it (``X-Server-Id``), so a
server that lost its port can never be taken for ready because another one answers there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import anyio
import httpx

from ..http.conftest import JWT_SECRET, WEBHOOK_SECRET
from .app import PID_HEADER, SERVER_ID_ENV, SERVER_ID_HEADER

__all__ = ["AppServer", "app_environment"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Seconds a server may take to answer from all its workers, and to exit.
READY_TIMEOUT = 120
EXIT_TIMEOUT = 20
#: Starts on a fresh port after uvicorn found its port taken.
START_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def app_environment(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a server process: this one's, minus any ``PAYMENTS_*``, plus the settings.

    ``settings`` are ``PAYMENTS_...`` variables without the prefix (``WEBHOOKS__RETRY_LOOP="false"``).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAYMENTS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    values = {
        "ENVIRONMENT": "test",
        "DATABASE__URL": database_url,
        "DATABASE__CREATE_TABLES": "false",
        "AUTH__JWT_SECRET": JWT_SECRET,
        "FAKE__WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DEFAULT_PROVIDER": "fake",
        **settings,
    }
    env.update({f"PAYMENTS_{key}": value for key, value in values.items()})
    return env


class PortTaken(RuntimeError):
    """uvicorn could not bind its port: another process took it after :func:`free_port`."""


class AppServer:
    """``python -m uvicorn tests.reliability.app:create_app --factory`` as an async context manager.

    Entering starts it (again, on another port, if the port found free was taken meanwhile) and
    waits until ``/billing/health`` answers from ``workers`` distinct processes of this server;
    leaving always stops it (SIGTERM, then SIGKILL to its process group).
    """

    def __init__(self, env: Mapping[str, str], log_path: Path, *, workers: int = 1) -> None:
        self.server_id = uuid.uuid4().hex
        self.env = {**env, SERVER_ID_ENV: self.server_id}
        self.log_path = log_path
        self.workers = workers
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AppServer:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.start()
            try:
                await self.wait_ready()
            except PortTaken:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
            except BaseException:
                self.stop()
                raise
            else:
                return self
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.port = free_port()
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.reliability.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self, *, tail: int | None = 4000) -> str:
        """What this start of the server wrote to its log: the last ``tail`` characters, or all of it."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            text = log.read().decode(errors="replace")
        return text if tail is None else text[-tail:]

    async def wait_ready(self) -> None:
        """Wait until health answers 200 from ``workers`` distinct processes of this server.

        Raises:
            PortTaken: uvicorn exited because another process had taken the port.
            RuntimeError: the server exited for another reason.
        """
        pids: set[str] = set()
        # No keep-alive: a new connection each time, so that every worker gets a chance to accept
        # one. One client for all the attempts: making a client costs tens of milliseconds of CPU
        # (its TLS context), which the workers still starting need more.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5, limits=limits) as client:
            with anyio.fail_after(READY_TIMEOUT):
                while len(pids) < self.workers:
                    if self.process is None or self.process.poll() is not None:
                        log = self.log()
                        if "address already in use" in log.lower():
                            raise PortTaken(f"port {self.port} was taken:\n{log}")
                        raise RuntimeError(f"the server exited before it was ready:\n{log}")
                    try:
                        response = await client.get("/billing/health")
                        if (
                            response.status_code == 200
                            and response.headers.get(SERVER_ID_HEADER) == self.server_id
                        ):
                            pids.add(response.headers[PID_HEADER])
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.05)

    async def wait_exit(self) -> int:
        """The exit code of the server process, waiting (at most ``EXIT_TIMEOUT``) for it to end."""
        assert self.process is not None
        with anyio.fail_after(EXIT_TIMEOUT):
            while (code := self.process.poll()) is None:  # noqa: ASYNC110 - polls another process
                await anyio.sleep(0.05)
        return code

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=EXIT_TIMEOUT)
        # Workers left behind by a supervisor that did not stop them: the group started above.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
