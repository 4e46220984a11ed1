"""``fastapi-cashier webhooks list|retry|replay`` against a real database, through PAYMENTS_*."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from fastapi_cashier.billing.events import EventApplier
from fastapi_cashier.cli import main
from fastapi_cashier.providers.base import ProviderEvent

from .conftest import JWT_SECRET, WEBHOOK_SECRET, settings_for
from .test_webhook_retries import _harness


def _env(database_url: str) -> dict[str, str]:
    return {
        "PAYMENTS_ENVIRONMENT": "test",
        "PAYMENTS_DATABASE__URL": database_url,
        "PAYMENTS_AUTH__JWT_SECRET": JWT_SECRET,
        "PAYMENTS_FAKE__WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PAYMENTS_DEFAULT_PROVIDER": "fake",
    }


def _two_failed_events(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A paid checkout whose two events failed to apply, stored in the database."""
    settings = settings_for(database_url)

    async def setup() -> None:
        async with _harness(settings) as harness:
            harness.fake.auto_deliver = False
            await harness.pay_one_off()
            with monkeypatch.context() as patch:

                async def broken(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
                    raise RuntimeError("ledger offline")

                patch.setattr(EventApplier, "apply", broken)
                for headers, body in harness.fake.sent_events:
                    response = await harness.client.post(
                        "/billing/webhooks/fake", content=body, headers=headers
                    )
                    assert response.json()["status"] == "failed"

    asyncio.run(setup())


def test_list_retry_and_replay_from_the_shell(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_failed_events(fresh_database_url, monkeypatch)
    runner = CliRunner()
    env = _env(fresh_database_url)

    listed = runner.invoke(main, ["webhooks", "list", "--status", "failed"], env=env)
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("failed") == 2
    assert "RuntimeError: ledger offline" in listed.output
    assert "payment.succeeded" in listed.output

    async def broken(self: EventApplier, event: ProviderEvent, *located: Any) -> Any:
        raise RuntimeError("ledger still offline")

    with monkeypatch.context() as patch:
        patch.setattr(EventApplier, "apply", broken)
        still = runner.invoke(main, ["webhooks", "retry", "--failed"], env=env)
    assert still.exit_code == 1
    assert "2 failed" in still.output
    assert "ledger still offline" in still.output

    fixed = runner.invoke(main, ["webhooks", "retry", "--failed"], env=env)
    assert fixed.exit_code == 0, fixed.output
    assert "failed" not in fixed.output.splitlines()[-1]
    assert "processed" in fixed.output
    assert (
        "no stored webhook events match"
        in runner.invoke(main, ["webhooks", "list", "--status", "failed"], env=env).output
    )
    everything = runner.invoke(main, ["webhooks", "list"], env=env)
    assert everything.output.count("processed") + everything.output.count("ignored") == 2

    replayed = runner.invoke(main, ["webhooks", "replay", "--since", "1h", "--yes"], env=env)
    assert replayed.exit_code == 0, replayed.output
    summary = replayed.output.splitlines()[-1]
    assert "failed" not in summary
    assert sum(int(part.split()[0]) for part in summary.split(", ")) == 2
    after = runner.invoke(main, ["webhooks", "list"], env=env)
    assert after.output.count("processed") + after.output.count("ignored") == 2
    nothing = runner.invoke(main, ["webhooks", "replay", "--since", "2999-01-01T00:00:00+00:00"], env=env)
    assert (nothing.exit_code, nothing.output.strip()) == (0, "nothing to do")
    due = runner.invoke(main, ["webhooks", "retry", "--due"], env=env)
    assert (due.exit_code, due.output.strip()) == (0, "nothing to do")

    unknown = runner.invoke(main, ["webhooks", "retry", str(uuid.uuid4())], env=env)
    assert unknown.exit_code == 1
    assert "was not found" in unknown.output
    applied = (
        runner.invoke(main, ["webhooks", "list", "--limit", "1"], env=env).output.splitlines()[1].split()[0]
    )
    conflict = runner.invoke(main, ["webhooks", "retry", applied], env=env)
    assert conflict.exit_code == 1
    assert "replay it to apply it again" in conflict.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["webhooks", "retry"], "give event ids, or --failed, or --due"),
        (["webhooks", "retry", "--failed", "--due"], "give event ids, or --failed, or --due"),
        (["webhooks", "replay", "--since", "yesterday"], "expected an ISO 8601 time"),
        (["webhooks", "replay", "--since", "2026-11-20T08:00:00"], "give the time with its UTC offset"),
        (["webhooks", "list", "--app", "nodots"], "expected MODULE:ATTR"),
        (["webhooks", "list", "--app", "no_such_module_here:payments"], "cannot load"),
        (["webhooks", "list", "--status", "lost"], "Invalid value for '--status'"),
    ],
)
def test_bad_arguments_get_clear_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args, env=_env("sqlite+aiosqlite:///:memory:"))
    assert result.exit_code == 2
    assert message in result.output


def test_an_ignored_event_shows_why_in_the_admin_api_and_the_shell(fresh_database_url: str) -> None:
    settings = settings_for(fresh_database_url)
    body = json.dumps(
        {
            "id": "evt_disputed_1",
            "type": "payment.disputed",
            "created": int(time.time()),
            "data": {"object": {"object": "payment", "id": "pay_elsewhere"}},
        }
    ).encode()

    async def deliver() -> dict[str, Any]:
        async with _harness(settings) as harness:
            response = await harness.client.post(
                "/billing/webhooks/fake", content=body, headers=harness.fake.sign(body)
            )
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "ignored"
            listed = await harness.client.get(
                "/billing/admin/webhook-events?status=ignored", headers=harness.auth("root", admin=True)
            )
            assert listed.status_code == 200, listed.text
            (item,) = listed.json()["items"]
            return dict(item)

    item = asyncio.run(deliver())

    assert item["event_id"] == "evt_disputed_1"
    assert item["ignored_reason"] == "no handler for payment.disputed events"
    assert item["last_error"] is None
    listed = CliRunner().invoke(
        main, ["webhooks", "list", "--status", "ignored"], env=_env(fresh_database_url)
    )
    assert listed.exit_code == 0, listed.output
    assert "payment.disputed" in listed.output
    assert "ignored: no handler for payment.disputed events" in listed.output
