"""The demo shop in a real headless Chromium: buy a ticket and pay, decline or go through 3-D
Secure on the fake checkout page; subscribe and change seats or cancel in the fake billing portal.
Each outcome is checked on the payment or subscription itself, read through the JSON API.

Chromium is driven through the Chrome DevTools Protocol over its ``--remote-debugging-port``
websocket, with the small RFC 6455 client below, so the test needs no Python package beyond the
project's own. It is skipped only when no ``chromium`` binary is installed (CI installs Debian's
``chromium`` and ``chromium-driver``). Everything listens on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from fastapi_cashier import PaymentsSettings
from fastapi_cashier.api.auth import create_token
from fastapi_cashier.demo import DEMO_CUSTOMER, create_demo_app

#: The longest any single wait of this test may take, in seconds.
WAIT = 20.0


def chromium_binary() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


# ------------------------------------------------------------------------- a DevTools client


class DevTools:
    """One CDP websocket session: a minimal RFC 6455 client (text frames, client-side masking)."""

    _GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, websocket_url: str) -> None:
        url = urlsplit(websocket_url)
        assert url.hostname == "127.0.0.1", websocket_url
        assert url.port is not None
        self._sock = socket.create_connection((url.hostname, url.port), timeout=WAIT)
        self._buffer = b""
        self._next_id = 0
        key = base64.b64encode(os.urandom(16)).decode()
        self._sock.sendall(
            (
                f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status, *header_lines = head.decode("latin-1").split("\r\n")
        assert status.split(" ")[1] == "101", status
        headers = {
            name.strip().lower(): value.strip() for name, value in (h.split(":", 1) for h in header_lines)
        }
        accept = base64.b64encode(hashlib.sha1((key + self._GUID).encode()).digest()).decode()  # noqa: S324
        assert headers.get("sec-websocket-accept") == accept

    def close(self) -> None:
        self._sock.close()

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("DevTools closed the connection")
        self._buffer += chunk

    def _read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def _receive_message(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._read(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(size)
            if mask:
                payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result; events that arrive meanwhile are dropped."""
        self._next_id += 1
        command_id = self._next_id
        self._send_frame(0x1, json.dumps({"id": command_id, "method": method, "params": params}).encode())
        deadline = time.monotonic() + WAIT
        while True:
            self._sock.settimeout(max(deadline - time.monotonic(), 0.01))
            reply = json.loads(self._receive_message())
            if reply.get("id") != command_id:
                continue
            if "error" in reply:
                raise AssertionError(f"{method} failed: {reply['error']}")
            result: dict[str, Any] = reply["result"]
            return result


class Page:
    """What the test does with the browser tab: navigate, read, click, take screenshots."""

    def __init__(self, devtools: DevTools) -> None:
        self.devtools = devtools

    def evaluate(self, expression: str) -> Any:
        reply = self.devtools.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    @property
    def url(self) -> str:
        return str(self.evaluate("location.href"))

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def loaded(self) -> bool:
        return bool(self.evaluate("document.readyState === 'complete'"))

    def navigate(self, url: str) -> None:
        self.devtools.call("Page.navigate", url=url)
        wait_until(lambda: self.url == url and self.loaded(), f"{url} to load")

    def wait_for_url(self, condition: Callable[[str], bool], what: str) -> str:
        wait_until(lambda: condition(self.url) and self.loaded(), what)
        return self.url

    def on_element(self, selector: str, body: str) -> Any:
        """Run the JavaScript function ``body`` with ``el`` bound to the element (or ``null``)."""
        return self.evaluate("(el => { " + body + " })(document.querySelector(" + json.dumps(selector) + "))")

    def is_visible(self, selector: str) -> bool:
        return bool(
            self.on_element(
                selector, "return !!el && el.checkVisibility() && el.getBoundingClientRect().width > 0;"
            )
        )

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, as a person would do it."""
        point = self.on_element(
            selector,
            "if (!el) return null; el.scrollIntoView({block: 'center'}); "
            "const box = el.getBoundingClientRect(); "
            "return {x: box.left + box.width / 2, y: box.top + box.height / 2};",
        )
        assert point is not None, f"no element matches {selector} on {self.url}"
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.devtools.call(
                "Input.dispatchMouseEvent", type=kind, x=point["x"], y=point["y"], button="left", clickCount=1
            )

    def type_into(self, selector: str, text: str) -> None:
        """Replace the value of an input as a person would: focus, select all, type."""
        focused = self.on_element(selector, "if (!el) return false; el.focus(); el.select(); return true;")
        assert focused, f"no element matches {selector} on {self.url}"
        self.devtools.call("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        shot = self.devtools.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary (install Debian's chromium and chromium-driver packages)")
    return binary


@dataclass
class Shop:
    """The running demo shop, and the demo customer's view of its state through the JSON API."""

    root: str
    settings: PaymentsSettings

    def api(self, path: str) -> Any:
        token = create_token(self.settings.auth, DEMO_CUSTOMER)
        answer = httpx.get(
            f"{self.root}/billing{path}", headers={"Authorization": f"Bearer {token}"}, timeout=WAIT
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def payment(self, reference: str) -> dict[str, Any]:
        [payment] = self.api(f"/payments?reference={reference}")["items"]
        return dict(payment)

    def subscriptions(self) -> list[dict[str, Any]]:
        return list(self.api("/subscriptions")["items"])


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    """The demo shop served by uvicorn in a thread on 127.0.0.1 and a free port."""
    app, _payments, settings = create_demo_app(database_url=f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # log_config=None leaves the test process's logging configuration alone.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    # The bound socket goes to uvicorn, so no other process can take the port in between.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{root}/billing/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, "the demo shop to answer")
        yield Shop(root=root, settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT)
        listener.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def page(chromium: str, tmp_path: Path) -> Iterator[Page]:
    """A tab of a fresh headless Chromium with its own profile, driven over DevTools."""
    profile = tmp_path / "chromium-profile"
    log_path = tmp_path / "chromium.log"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "--window-size=1280,900",
        "about:blank",
    ]
    with log_path.open("wb") as log:
        browser = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    devtools: DevTools | None = None
    try:
        port_file = profile / "DevToolsActivePort"

        def debugging_port() -> int | None:
            if browser.poll() is not None:
                raise AssertionError(f"chromium exited with {browser.returncode}:\n{log_path.read_text()}")
            lines = port_file.read_text().split() if port_file.exists() else []
            return int(lines[0]) if len(lines) >= 2 else None

        port = wait_until(debugging_port, "chromium's DevTools port")
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=WAIT).json()
        [tab] = [target for target in targets if target["type"] == "page"]
        devtools = DevTools(tab["webSocketDebuggerUrl"])
        yield Page(devtools)
    finally:
        if devtools is not None:
            devtools.close()
        browser.terminate()
        try:
            browser.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait(timeout=WAIT)


# ------------------------------------------------------------------------------- the test


def open_ticket_checkout(shop: Shop, page: Page) -> str:
    """From the shop's home page to the fake checkout page of one ticket; its URL."""
    page.navigate(f"{shop.root}/")
    assert page.is_visible("#buy")
    page.click("#buy")
    checkout_url = page.wait_for_url(
        lambda url: url.startswith(f"{shop.root}/billing/fake/checkout/"), "the fake checkout page"
    )
    wait_until(lambda: page.is_visible("#pay"), "the Pay button")
    return checkout_url


def test_a_buyer_pays_for_a_ticket_on_the_fake_checkout_page(shop: Shop, page: Page, tmp_path: Path) -> None:
    page.navigate(f"{shop.root}/")
    assert page.is_visible("#buy")
    assert "Buy a concert ticket (€25.00)" in page.text()
    page.screenshot(tmp_path / "1-shop.png")

    checkout_url = open_ticket_checkout(shop, page)
    assert "25.00" in str(page.evaluate("document.querySelector('#amount').innerText"))
    for button in ("#pay", "#decline", "#three-d-secure"):
        assert page.is_visible(button), f"{button} is not visible on {checkout_url}"
    page.screenshot(tmp_path / "2-checkout.png")

    page.click("#pay")
    page.wait_for_url(lambda url: url.endswith("/demo/success"), "the shop's success page")
    text = page.text()
    assert "succeeded" in text
    assert "25.00 EUR" in text
    assert "Concert ticket" in text
    assert page.screenshot(tmp_path / "3-success.png").stat().st_size > 0
    payment = shop.payment("ticket-1")
    assert (payment["status"], payment["amount"], payment["currency"]) == ("succeeded", 2500, "EUR")
    assert payment["refunded_amount"] == 0


def test_a_declined_card_fails_the_payment(shop: Shop, page: Page) -> None:
    open_ticket_checkout(shop, page)
    page.click("#decline")
    page.wait_for_url(lambda url: url.endswith("/demo/cancel"), "the shop's cancel page")
    payment = shop.payment("ticket-1")
    assert payment["status"] == "failed"
    assert payment["failure_code"] == "card_declined"
    assert payment["amount"] == 2500


@pytest.mark.parametrize(
    ("button", "landing", "status"),
    [
        pytest.param("#authenticate", "/demo/success", "succeeded", id="passed"),
        pytest.param("#fail-authentication", "/demo/cancel", "failed", id="failed"),
    ],
)
def test_three_d_secure_in_the_browser(
    shop: Shop, page: Page, button: str, landing: str, status: str
) -> None:
    checkout_url = open_ticket_checkout(shop, page)
    page.click("#three-d-secure")
    page.wait_for_url(
        lambda url: url != checkout_url and url.startswith(f"{shop.root}/billing/fake/checkout/"),
        "the 3-D Secure challenge",
    )
    wait_until(lambda: page.is_visible(button), f"the {button} button")
    # The challenge is pending: the payment waits for the customer.
    assert shop.payment("ticket-1")["status"] == "requires_action"
    page.click(button)
    page.wait_for_url(lambda url: url.endswith(landing), f"the shop's {landing} page")
    payment = shop.payment("ticket-1")
    assert payment["status"] == status
    assert (payment["amount"], payment["currency"]) == (2500, "EUR")


def test_the_portal_changes_seats_and_cancels_at_the_period_end(shop: Shop, page: Page) -> None:
    page.navigate(f"{shop.root}/")
    page.type_into("#seats", "2")
    page.click("#subscribe")
    page.wait_for_url(lambda url: url.startswith(f"{shop.root}/billing/fake/checkout/"), "the checkout page")
    wait_until(lambda: page.is_visible("#pay"), "the Pay button")
    page.click("#pay")
    page.wait_for_url(lambda url: url.startswith(f"{shop.root}/demo/account"), "the account page")
    [subscription] = shop.subscriptions()
    assert (subscription["status"], subscription["quantity"]) == ("trialing", 2)
    assert subscription["cancel_at_period_end"] is False

    wait_until(lambda: page.is_visible("#open-portal"), "the portal button")
    page.click("#open-portal")
    page.wait_for_url(lambda url: url.startswith(f"{shop.root}/billing/fake/portal/"), "the portal")
    quantity_input = wait_until(
        lambda: page.evaluate("(document.querySelector('input[id^=\"quantity-\"]') || {}).id"),
        "the quantity form",
    )
    provider_subscription_id = str(quantity_input).removeprefix("quantity-")
    page.type_into(f"#quantity-{provider_subscription_id}", "5")
    page.click(f"#change-quantity-{provider_subscription_id}")
    wait_until(lambda: shop.subscriptions()[0]["quantity"] == 5, "the new quantity in the library")
    [changed] = shop.subscriptions()
    assert (changed["id"], changed["status"], changed["cancel_at_period_end"]) == (
        subscription["id"],
        "trialing",
        False,
    )

    wait_until(lambda: page.is_visible(f"#cancel-{provider_subscription_id}"), "the cancel button")
    page.click(f"#cancel-{provider_subscription_id}")
    wait_until(lambda: shop.subscriptions()[0]["cancel_at_period_end"], "the cancellation in the library")
    [canceled] = shop.subscriptions()
    assert (canceled["status"], canceled["quantity"]) == ("trialing", 5)
    assert canceled["current_period_end"] == subscription["current_period_end"]
