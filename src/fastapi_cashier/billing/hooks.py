"""Host event hooks: async callbacks run once per domain event, after the transaction commits."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DomainEvent", "Hook", "HookRegistry"]

logger = logging.getLogger("fastapi_cashier")


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened to a billing object, as the host's hooks see it.

    Attributes:
        type: ``"<entity>.<new status>"``, e.g. ``"payment.succeeded"``, ``"refund.succeeded"``.
        entity_type: ``"payment"``, ``"refund"``, ``"checkout_session"``, ``"subscription"`` ...
        entity_id: The local id of the object.
        data: A JSON-friendly summary of the object after the change.
        cause: ``api``, ``webhook``, ``admin`` or ``system``.
        provider_event_id: The provider event that caused it, if any.
    """

    type: str
    entity_type: str
    entity_id: uuid.UUID
    data: dict[str, Any] = field(default_factory=dict)
    cause: str = "system"
    provider_event_id: str | None = None


Hook = Callable[[DomainEvent], Awaitable[None]]


class HookRegistry:
    """Callbacks by event type; ``"*"`` receives every event."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = defaultdict(list)

    def on(self, event_type: str) -> Callable[[Hook], Hook]:
        """Register an async callback for ``event_type`` (decorator)."""

        def register(hook: Hook) -> Hook:
            self.add(event_type, hook)
            return hook

        return register

    def add(self, event_type: str, hook: Hook) -> None:
        """Register ``hook`` for ``event_type``."""
        self._hooks[event_type].append(hook)

    async def dispatch(self, events: Iterable[DomainEvent]) -> None:
        """Run the hooks of each event, in order. A failing hook is logged; the rest still run.

        The events are already committed: a hook's failure can never undo or lose them.
        """
        for event in events:
            for hook in [*self._hooks.get(event.type, ()), *self._hooks.get("*", ())]:
                try:
                    await hook(event)
                except Exception:
                    logger.exception("hook %r failed for event %s %s", hook, event.type, event.entity_id)
