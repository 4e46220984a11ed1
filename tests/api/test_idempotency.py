"""``Idempotency-Key``: replays, conflicts, released keys and concurrent duplicates, on every database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fastapi_cashier.api.idempotency import (
    IDEMPOTENT_REPLAYED_HEADER,
    IdempotencyStore,
    IdempotentOutcome,
    request_fingerprint,
    validate_idempotency_key,
)
from fastapi_cashier.db.models import IdempotencyKey
from fastapi_cashier.errors import ConflictError, IdempotencyConflictError, ValidationError

pytestmark = pytest.mark.anyio

BODY = json.dumps({"amount": 1250, "currency": "EUR"}).encode()
PATH = "/billing/checkout-sessions"


class CountingHandler:
    """A creating handler that counts how often it really ran."""

    def __init__(self, *, delay: float = 0.0, status_code: int = 201) -> None:
        self.calls = 0
        self.delay = delay
        self.status_code = status_code

    async def __call__(self) -> tuple[int, Any]:
        self.calls += 1
        if self.delay:
            await anyio.sleep(self.delay)
        return self.status_code, {"id": f"cs_{self.calls}", "amount": 1250, "currency": "EUR"}


async def run(
    store: IdempotencyStore,
    handler: Any,
    *,
    key: str = "key-1",
    principal: str = "user-1",
    body: bytes = BODY,
    path: str = PATH,
) -> IdempotentOutcome:
    return await store.run(principal=principal, key=key, method="POST", path=path, body=body, handler=handler)


async def stored_keys(session_factory: async_sessionmaker[AsyncSession]) -> list[IdempotencyKey]:
    async with session_factory() as session:
        return list((await session.execute(sa.select(IdempotencyKey))).scalars())


async def test_replay_returns_the_stored_response_and_runs_once(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    store = IdempotencyStore(session_factory)
    handler = CountingHandler()
    first = await run(store, handler)
    assert first == IdempotentOutcome(
        status_code=201, body={"id": "cs_1", "amount": 1250, "currency": "EUR"}, replayed=False
    )
    # Same JSON with other key order and spacing is the same request.
    same = b'{ "currency": "EUR",  "amount": 1250 }'
    second = await run(store, handler, body=same)
    assert second == IdempotentOutcome(status_code=201, body=first.body, replayed=True)
    assert handler.calls == 1
    assert second.to_response().headers[IDEMPOTENT_REPLAYED_HEADER] == "true"
    assert IDEMPOTENT_REPLAYED_HEADER.lower() not in first.to_response().headers
    [row] = await stored_keys(session_factory)
    assert row.completed_at is not None
    assert row.response_status == 201
    assert row.method == "POST"
    assert row.path == PATH


async def test_response_bodies_are_stored_as_json(session_factory: async_sessionmaker[AsyncSession]) -> None:
    store = IdempotencyStore(session_factory)
    created = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    object_id = uuid.uuid4()

    async def handler() -> tuple[int, Any]:
        return 201, {"id": object_id, "created_at": created, "items": (1, 2)}

    first = await run(store, handler)
    replay = await run(store, handler)
    assert first.body == {"id": str(object_id), "created_at": created.isoformat(), "items": [1, 2]}
    assert replay.body == first.body
    assert replay.replayed is True


async def test_same_key_with_another_request_is_a_conflict(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    store = IdempotencyStore(session_factory)
    handler = CountingHandler()
    await run(store, handler)
    other_body = json.dumps({"amount": 9999, "currency": "EUR"}).encode()
    with pytest.raises(IdempotencyConflictError, match="already used with a different request") as caught:
        await run(store, handler, body=other_body)
    assert caught.value.details == {"idempotency_key": "key-1"}
    with pytest.raises(IdempotencyConflictError):
        await run(store, handler, path="/billing/portal-sessions")
    assert handler.calls == 1


async def test_keys_belong_to_one_principal(session_factory: async_sessionmaker[AsyncSession]) -> None:
    store = IdempotencyStore(session_factory)
    handler = CountingHandler()
    await run(store, handler, principal="user-1")
    other = await run(store, handler, principal="user-2")
    assert other.replayed is False
    assert handler.calls == 2


async def test_long_principals_are_hashed_not_truncated(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    store = IdempotencyStore(session_factory)
    handler = CountingHandler()
    long_a, long_b = "a" * 300, "a" * 255 + "b" * 45
    assert (await run(store, handler, principal=long_a)).replayed is False
    assert (await run(store, handler, principal=long_b)).replayed is False
    assert (await run(store, handler, principal=long_a)).replayed is True
    assert handler.calls == 2


async def test_duplicate_while_in_flight_is_told_to_retry(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    store = IdempotencyStore(session_factory)
    started, release = anyio.Event(), anyio.Event()
    outcomes: list[IdempotentOutcome] = []

    async def slow_handler() -> tuple[int, Any]:
        started.set()
        await release.wait()
        return 201, {"id": "cs_slow"}

    async def first_request() -> None:
        outcomes.append(await run(store, slow_handler))

    async with anyio.create_task_group() as tg:
        tg.start_soon(first_request)
        await started.wait()
        with pytest.raises(ConflictError, match="still in progress") as caught:
            await run(store, CountingHandler())
        assert not isinstance(caught.value, IdempotencyConflictError)
        release.set()

    assert outcomes[0].replayed is False
    replay = await run(store, CountingHandler())
    assert replay == IdempotentOutcome(status_code=201, body={"id": "cs_slow"}, replayed=True)


async def test_failing_handler_frees_the_key(session_factory: async_sessionmaker[AsyncSession]) -> None:
    store = IdempotencyStore(session_factory)

    async def failing() -> tuple[int, Any]:
        raise ValidationError("amount must be positive", field="amount")

    with pytest.raises(ValidationError, match="amount must be positive"):
        await run(store, failing)
    assert await stored_keys(session_factory) == []
    handler = CountingHandler()
    outcome = await run(store, handler)
    assert outcome.replayed is False
    assert handler.calls == 1


async def test_cancelled_handler_frees_the_key(session_factory: async_sessionmaker[AsyncSession]) -> None:
    store = IdempotencyStore(session_factory)
    started = anyio.Event()

    async def hanging() -> tuple[int, Any]:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, store, hanging)
        await started.wait()
        tg.cancel_scope.cancel()

    assert await stored_keys(session_factory) == []
    assert (await run(store, CountingHandler())).replayed is False


async def test_concurrent_duplicates_run_the_handler_once(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    store = IdempotencyStore(session_factory)
    handler = CountingHandler(delay=0.05)
    outcomes: list[IdempotentOutcome] = []
    conflicts: list[ConflictError] = []

    async def attempt() -> None:
        try:
            outcomes.append(await run(store, handler))
        except ConflictError as exc:
            conflicts.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(attempt)

    assert handler.calls == 1
    assert len(outcomes) + len(conflicts) == 10
    assert [outcome.replayed for outcome in outcomes].count(False) == 1
    assert {json.dumps(outcome.body, sort_keys=True) for outcome in outcomes} == {
        json.dumps({"id": "cs_1", "amount": 1250, "currency": "EUR"}, sort_keys=True)
    }
    assert all(type(exc) is ConflictError for exc in conflicts)
    assert len(await stored_keys(session_factory)) == 1


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * 256, id="too-long"),
        pytest.param("clé", id="non-ascii"),
        pytest.param("line\nbreak", id="control"),
        pytest.param("nul\x00", id="nul"),
        pytest.param("   ", id="blank"),
    ],
)
async def test_bad_keys_are_refused(session_factory: async_sessionmaker[AsyncSession], key: str) -> None:
    store = IdempotencyStore(session_factory)
    handler = CountingHandler()
    with pytest.raises(ValidationError) as caught:
        await run(store, handler, key=key)
    assert caught.value.field == "Idempotency-Key"
    assert handler.calls == 0
    assert await stored_keys(session_factory) == []


@pytest.mark.parametrize("key", ["k" * 255, "a", "order 42/retry#1", "~!@#$%^&*()"])
def test_good_keys_are_accepted(key: str) -> None:
    assert validate_idempotency_key(key) == key


async def test_purge_deletes_old_keys(session_factory: async_sessionmaker[AsyncSession]) -> None:
    store = IdempotencyStore(session_factory)
    await run(store, CountingHandler(), key="old")
    await run(store, CountingHandler(), key="new")
    async with session_factory() as session:
        await session.execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
        await session.commit()
    assert await store.purge() == 1
    assert [row.key for row in await stored_keys(session_factory)] == ["new"]
    # A purged key can be used for a new request.
    assert (await run(store, CountingHandler(), key="old", body=b"{}")).replayed is False
    assert await store.purge(older_than=timedelta(0)) == 2


def test_fingerprint_canonicalises_json_only() -> None:
    assert request_fingerprint("POST", PATH, b'{"a": 1, "b": 2}') == request_fingerprint(
        "post", PATH, b'{"b":2,"a":1}'
    )
    assert request_fingerprint("POST", PATH, b'{"a": 1}') != request_fingerprint("POST", PATH, b'{"a": 2}')
    assert request_fingerprint("POST", PATH, b"a=1 ") != request_fingerprint("POST", PATH, b"a=1")
    assert request_fingerprint("POST", PATH, b"") != request_fingerprint("POST", "/other", b"")
    assert len(request_fingerprint("POST", PATH, b"\xff\xfe")) == 64
