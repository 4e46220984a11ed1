"""Records: the status audit trail, the webhook inbox, idempotency keys and counters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ...statuses import ChangeCause, WebhookEventStatus
from ..base import (
    TABLE_PREFIX,
    Base,
    Identifier,
    JSONDict,
    LongBinary,
    LongText,
    UTCDateTime,
    UUIDPrimaryKey,
    enum_column,
    utcnow,
)

__all__ = ["IdempotencyKey", "RateLimitCounter", "Sequence", "StatusChange", "WebhookEvent"]


class StatusChange(UUIDPrimaryKey, Base):
    """One move of one object's status, with who or what caused it."""

    __tablename__ = f"{TABLE_PREFIX}status_changes"
    __table_args__ = (sa.Index(None, "entity_type", "entity_id", "created_at"),)

    entity_type: Mapped[str] = mapped_column(sa.String(40))
    entity_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid())
    from_status: Mapped[str | None] = mapped_column(sa.String(32))
    to_status: Mapped[str] = mapped_column(sa.String(32))
    cause: Mapped[ChangeCause] = mapped_column(enum_column(ChangeCause))
    actor: Mapped[str | None] = mapped_column(sa.String(255))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    provider_event_id: Mapped[str | None] = mapped_column(Identifier(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookEvent(UUIDPrimaryKey, Base):
    """The durable inbox: every verified delivery, stored once per (provider, event_id)."""

    __tablename__ = f"{TABLE_PREFIX}webhook_events"
    __table_args__ = (
        sa.UniqueConstraint("provider", "event_id"),
        sa.Index(None, "status", "next_attempt_at"),
        sa.Index(None, "received_at", "id"),
    )

    provider: Mapped[str] = mapped_column(Identifier(40))
    event_id: Mapped[str] = mapped_column(Identifier(255))
    type: Mapped[str] = mapped_column(sa.String(100), index=True)
    object_kind: Mapped[str | None] = mapped_column(sa.String(40))
    object_provider_id: Mapped[str | None] = mapped_column(Identifier(255))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    raw_body: Mapped[bytes] = mapped_column(LongBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[WebhookEventStatus] = mapped_column(
        enum_column(WebhookEventStatus), default=WebhookEventStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(LongText)
    #: Why an ``ignored`` event changed nothing (unknown type, a body the adapter cannot read,
    #: older than the state applied, ...); ``None`` for every other status.
    ignored_reason: Mapped[str | None] = mapped_column(LongText)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyKey(UUIDPrimaryKey, Base):
    """A stored response to a creating POST, replayed when the same key comes again.

    ``completed_at`` is ``None`` while the first request is still running.
    """

    __tablename__ = f"{TABLE_PREFIX}idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("principal", "key"),)

    principal: Mapped[str] = mapped_column(Identifier(255))
    key: Mapped[str] = mapped_column(Identifier(255))
    method: Mapped[str] = mapped_column(sa.String(10))
    path: Mapped[str] = mapped_column(sa.String(500))
    request_fingerprint: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int | None]
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONDict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Sequence(Base):
    """A named gap-free counter (invoice numbers), advanced under a row lock."""

    __tablename__ = f"{TABLE_PREFIX}sequences"

    name: Mapped[str] = mapped_column(Identifier(40), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class RateLimitCounter(UUIDPrimaryKey, Base):
    """Requests of one customer in one fixed window (``scope`` is e.g. ``"minute"``).

    Shared by every app process through the database, and advanced with one atomic upsert, so
    limits hold across many workers.
    """

    __tablename__ = f"{TABLE_PREFIX}rate_limit_counters"
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "scope", "window_start"),
        sa.Index(None, "window_start"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid())
    scope: Mapped[str] = mapped_column(Identifier(40))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
