"""``Idempotency-Key`` for creating POSTs: the same key and body replay the stored response.

The first request with a key reserves it by inserting a row and committing at once; the
database's unique constraint on (principal, key) decides which of several concurrent requests
runs the handler, on every supported database and across app processes. The others get the
stored response when it is ready, or a 409 problem while the first one is still running.

::

    store = IdempotencyStore(session_factory)
    outcome = await store.run(principal=p.subject, key=key, method="POST", path=path,
                              body=await request.body(), handler=create_checkout)
    return outcome.to_response()
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import sqlalchemy as sa
from fastapi.encoders import jsonable_encoder
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import JSONResponse

from ..db.base import utcnow
from ..db.model_repositories import IdempotencyKeyRepository
from ..db.models import IdempotencyKey
from ..errors import ConflictError, IdempotencyConflictError, ValidationError

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "IDEMPOTENT_REPLAYED_HEADER",
    "IdempotencyStore",
    "IdempotentOutcome",
    "request_fingerprint",
    "validate_idempotency_key",
]

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
#: Set to ``"true"`` on a response that replays a stored one.
IDEMPOTENT_REPLAYED_HEADER = "Idempotent-Replayed"

_KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,255}")
_MAX_PRINCIPAL = 255
_MAX_PATH = 500
# A reservation can vanish between our failed insert and the read (its handler failed).
_RESERVE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class IdempotentOutcome:
    """The response of an idempotent request.

    Attributes:
        status_code: The HTTP status of the (original) response.
        body: Its JSON-compatible body.
        replayed: True when the body is the stored response of an earlier request.
    """

    status_code: int
    body: Any
    replayed: bool

    def to_response(self) -> JSONResponse:
        """A JSON response, marked with ``Idempotent-Replayed: true`` when replayed."""
        headers = {IDEMPOTENT_REPLAYED_HEADER: "true"} if self.replayed else None
        return JSONResponse(self.body, status_code=self.status_code, headers=headers)


def validate_idempotency_key(key: str) -> str:
    """Return ``key`` if it is 1 to 255 printable ASCII characters, else raise ``ValidationError``."""
    if not _KEY_PATTERN.fullmatch(key) or not key.strip():
        raise ValidationError(
            "Idempotency-Key must be 1 to 255 printable ASCII characters", field=IDEMPOTENCY_KEY_HEADER
        )
    return key


def _canonical_body(body: bytes) -> bytes:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return body
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 hex of the method, the path and the body (JSON bodies canonicalised first).

    Two JSON bodies that differ only in key order or whitespace have the same fingerprint.
    """
    digest = hashlib.sha256()
    digest.update(method.upper().encode())
    digest.update(b"\n")
    digest.update(path.encode())
    digest.update(b"\n")
    digest.update(_canonical_body(body))
    return digest.hexdigest()


def _stored_principal(principal: str) -> str:
    # The column holds 255 characters; a longer subject is stored as its hash, never truncated
    # (truncating could let two principals share keys).
    if len(principal) <= _MAX_PRINCIPAL:
        return principal
    return "sha256:" + hashlib.sha256(principal.encode()).hexdigest()


class IdempotencyStore:
    """Runs creating requests at most once per (principal, ``Idempotency-Key``).

    Args:
        session_factory: Sessions on the library's database. The store commits its own short
            transactions, separate from the handler's unit of work.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def run(
        self,
        *,
        principal: str,
        key: str,
        method: str,
        path: str,
        body: bytes,
        handler: Callable[[], Awaitable[tuple[int, Any]]],
    ) -> IdempotentOutcome:
        """Run ``handler`` once for this key, or replay what it returned the first time.

        Args:
            principal: The caller's subject; keys are scoped per principal.
            key: The ``Idempotency-Key`` header value.
            method: The HTTP method.
            path: The request path.
            body: The raw request body.
            handler: Performs the request and returns ``(status_code, body)``.

        Raises:
            ValidationError: The key is not 1 to 255 printable ASCII characters.
            IdempotencyConflictError: The key was used with a different method, path or body.
            ConflictError: A request with this key is still running; retry later.

        If ``handler`` raises, the key is released (so a corrected retry can run) and the error
        propagates. If the response cannot be stored, the key stays reserved: the handler
        never runs twice for one key.
        """
        validate_idempotency_key(key)
        stored_principal = _stored_principal(principal)
        fingerprint = request_fingerprint(method, path, body)
        reserved = await self._reserve(stored_principal, key, method, path, fingerprint)
        if isinstance(reserved, IdempotentOutcome):
            return reserved
        try:
            status_code, response_body = await handler()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._release(reserved)
            raise
        encoded = jsonable_encoder(response_body)
        await self._complete(reserved, status_code, encoded)
        return IdempotentOutcome(status_code=status_code, body=encoded, replayed=False)

    async def _reserve(
        self, principal: str, key: str, method: str, path: str, fingerprint: str
    ) -> uuid.UUID | IdempotentOutcome:
        """The id of a new reservation, or the stored outcome of an earlier request."""
        for _ in range(_RESERVE_ATTEMPTS):
            async with self._session_factory() as session:
                repository = IdempotencyKeyRepository(session=session)
                row = IdempotencyKey(
                    principal=principal,
                    key=key,
                    method=method.upper()[:10],
                    path=path[:_MAX_PATH],
                    request_fingerprint=fingerprint,
                )
                try:
                    await repository.add(row)
                except ConflictError:
                    existing = await repository.find(principal, key)
                else:
                    await session.commit()
                    return row.id
                if existing is None:
                    continue
                if existing.request_fingerprint != fingerprint:
                    raise IdempotencyConflictError(
                        f"Idempotency-Key {key!r} was already used with a different request",
                        details={"idempotency_key": key},
                    )
                if existing.completed_at is not None and existing.response_status is not None:
                    return IdempotentOutcome(
                        status_code=existing.response_status, body=existing.response_body, replayed=True
                    )
                break
        raise ConflictError(
            f"a request with Idempotency-Key {key!r} is still in progress; retry later",
            details={"idempotency_key": key},
        )

    async def _complete(self, row_id: uuid.UUID, status_code: int, body: Any) -> None:
        async with self._session_factory() as session:
            await session.execute(
                sa.update(IdempotencyKey)
                .where(IdempotencyKey.id == row_id)
                .values(response_status=status_code, response_body=body, completed_at=utcnow())
            )
            await session.commit()

    async def _release(self, row_id: uuid.UUID) -> None:
        async with self._session_factory() as session:
            await session.execute(
                sa.delete(IdempotencyKey).where(
                    IdempotencyKey.id == row_id, IdempotencyKey.completed_at.is_(None)
                )
            )
            await session.commit()

    async def purge(self, older_than: timedelta = timedelta(hours=24)) -> int:
        """Delete keys created more than ``older_than`` ago; returns how many were deleted.

        After that a key may be reused for a new request. Reservations whose request never
        finished (the process died) go too.
        """
        cutoff = utcnow() - older_than
        async with self._session_factory() as session:
            result = await session.execute(
                sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
            )
            await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]
