"""Wire shapes of the stored webhook events, for ``/admin/webhook-events``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from ...statuses import WebhookEventStatus
from ._base import ResponseBody

__all__ = ["WebhookAttemptOut", "WebhookEventOut"]


class WebhookEventOut(ResponseBody):
    """A stored delivery: what it was about and how applying it went.

    ``status`` is ``pending`` (stored, not applied yet), ``processed``, ``ignored`` (changed
    nothing; ``ignored_reason`` says why: an event type the adapter does not handle, a body it
    could not read, an event older than the state already applied, ...), or ``failed``
    (``last_error`` is the error; it is retried at ``next_attempt_at``, or never again
    automatically when that is ``null``).
    """

    id: uuid.UUID
    provider: str
    event_id: str
    type: str
    object_kind: str | None
    object_provider_id: str | None
    occurred_at: datetime | None
    received_at: datetime
    status: WebhookEventStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    ignored_reason: str | None
    processed_at: datetime | None


class WebhookAttemptOut(ResponseBody):
    """What one manual retry did, and the stored event afterwards."""

    outcome: Literal["processed", "ignored", "failed", "duplicate"]
    detail: str | None
    event: WebhookEventOut
