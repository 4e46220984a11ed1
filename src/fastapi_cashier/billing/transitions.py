"""Status changes go through the status machines and leave an audit row and a hook event."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from ..db.models import StatusChange
from ..statuses import ChangeCause, StatusMachine
from .hooks import DomainEvent

if TYPE_CHECKING:
    from .service import PaymentsService

__all__ = ["record_creation", "transition"]

S = TypeVar("S", bound=StrEnum)


async def record_creation(
    svc: PaymentsService,
    entity_type: str,
    row: Any,
    *,
    cause: ChangeCause,
    actor: str | None = None,
    reason: str | None = None,
    provider_event_id: str | None = None,
) -> None:
    """Audit the first status of a new row (``None -> status``) and queue its hook event."""
    _record(svc, entity_type, row, None, cause, actor, reason, provider_event_id)


async def transition(
    svc: PaymentsService,
    entity_type: str,
    row: Any,
    machine: StatusMachine[S],
    new_status: S,
    *,
    cause: ChangeCause,
    actor: str | None = None,
    reason: str | None = None,
    provider_event_id: str | None = None,
    strict: bool = True,
) -> bool:
    """Move ``row`` to ``new_status`` if the machine allows it.

    Returns False when the row is already there (nothing to do). A move the machine refuses
    raises :class:`~fastapi_cashier.errors.InvalidTransitionError` when ``strict`` (API calls),
    and returns False otherwise (webhooks record and ignore it).
    """
    current = row.status
    if current == new_status:
        return False
    if not machine.can(current, new_status):
        if strict:
            machine.require(current, new_status)
        return False
    row.status = new_status
    _record(svc, entity_type, row, current, cause, actor, reason, provider_event_id)
    return True


def _record(
    svc: PaymentsService,
    entity_type: str,
    row: Any,
    previous: StrEnum | None,
    cause: ChangeCause,
    actor: str | None,
    reason: str | None,
    provider_event_id: str | None,
) -> None:
    """The audit row of a status change and the hook event that runs after the commit."""
    svc.session.add(
        StatusChange(
            entity_type=entity_type,
            entity_id=row.id,
            from_status=previous.value if previous is not None else None,
            to_status=row.status.value,
            cause=cause,
            actor=actor,
            reason=reason,
            provider_event_id=provider_event_id,
        )
    )
    svc.queue_event(
        DomainEvent(
            type=f"{entity_type}.{row.status.value}",
            entity_type=entity_type,
            entity_id=row.id,
            data=svc.describe(entity_type, row),
            cause=cause.value,
            provider_event_id=provider_event_id,
        )
    )
