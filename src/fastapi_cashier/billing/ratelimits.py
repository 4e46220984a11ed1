"""Fixed-window request counters kept in the database, so every app process shares them.

Each hit is one atomic upsert that creates the window's row or adds one to it:
``INSERT ... ON CONFLICT (customer_id, scope, window_start) DO UPDATE SET count = count + 1
RETURNING count`` on PostgreSQL and SQLite, ``INSERT ... ON DUPLICATE KEY UPDATE count = count + 1``
and a read of the row (still locked by that statement) on MariaDB/MySQL. Concurrent hits, from
any number of workers, each see a different count; nothing is counted in process memory.

Windows are aligned to the Unix epoch: a one-minute window starts on the minute (UTC), an hour
window on the hour. A refused hit is still counted in its window.

A request checked against several plan limits (:meth:`RateLimitService.hit_plan_limits`) writes
each counter in a short transaction of its own, so it never holds one counter's row lock while
waiting for another's: no lock cycle can form between requests. What MariaDB may still report
(two first hits of a new window both inserting its row, error 1213; a lock wait timeout, 1205)
is re-run, as the webhook inbox re-runs its applies.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from ..db.base_repository import is_integrity_error, is_transient
from ..db.models import RateLimitCounter
from ..errors import ValidationError
from ._base import DomainService
from ._base import now as utc_now

__all__ = ["PLAN_REQUEST_LIMITS", "RateLimitResult", "RateLimitService", "window_start"]

#: The plan features (numeric limits) that cap a customer's requests, with their windows,
#: shortest first.
PLAN_REQUEST_LIMITS: tuple[tuple[str, timedelta], ...] = (
    ("requests_per_minute", timedelta(minutes=1)),
    ("requests_per_hour", timedelta(hours=1)),
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SCOPE = 40
#: How often a counter's transaction is re-run after a deadlock or a lock wait timeout.
_TRANSIENT_RERUNS = 8
_counters = cast(sa.Table, RateLimitCounter.__table__)


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """The outcome of one hit.

    Attributes:
        allowed: Whether the hit is within the limit (``count <= limit``).
        count: Hits in the window so far, this one included.
        limit: The most hits the window allows.
        reset_at: When the window ends and a new one starts.
        retry_after_seconds: Whole seconds until ``reset_at`` when refused (at least 1); 0 when allowed.
        scope: What was counted (``"requests_per_minute"``).
    """

    allowed: bool
    count: int
    limit: int
    reset_at: datetime
    retry_after_seconds: int
    scope: str = ""


def window_start(moment: datetime, window: timedelta) -> datetime:
    """``moment`` truncated to the start of its ``window`` (windows are aligned to the epoch)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError("now must be a timezone-aware datetime", field="now")
    elapsed = moment.astimezone(UTC) - _EPOCH
    return _EPOCH + (elapsed // window) * window


class RateLimitService(DomainService):
    """Counts hits per customer, scope and fixed window in the shared database."""

    async def hit(
        self,
        customer_id: uuid.UUID,
        *,
        scope: str,
        limit: int,
        window: timedelta,
        now: datetime | None = None,
    ) -> RateLimitResult:
        """Count one hit and say whether it is within ``limit`` hits per ``window``.

        The count is committed with the caller's transaction; keep that transaction short, as the
        window's row stays locked until it ends (PostgreSQL, MariaDB) or the database is (SQLite).

        Args:
            customer_id: Who is counted.
            scope: What is counted, 1 to 40 characters (``"requests_per_minute"``).
            limit: Hits allowed per window (0 refuses every hit).
            window: The window's length; windows are aligned to the Unix epoch.
            now: The time of the hit (default: the clock).

        Raises:
            ValidationError: an empty or too long scope, a negative limit, a window under a second.
        """
        if not 1 <= len(scope) <= _MAX_SCOPE:
            raise ValidationError(f"scope must be 1 to {_MAX_SCOPE} characters", field="scope")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError("limit must be a non-negative integer", field="limit")
        if window < timedelta(seconds=1):
            raise ValidationError("window must be at least one second", field="window")
        moment = now if now is not None else utc_now()
        start = window_start(moment, window)
        count = await self._increment(customer_id, scope, start)
        reset_at = start + window
        allowed = count <= limit
        retry_after = 0 if allowed else max(1, math.ceil((reset_at - moment).total_seconds()))
        return RateLimitResult(
            allowed=allowed,
            count=count,
            limit=limit,
            reset_at=reset_at,
            retry_after_seconds=retry_after,
            scope=scope,
        )

    async def hit_plan_limits(
        self, customer_id: uuid.UUID, *, now: datetime | None = None
    ) -> list[RateLimitResult]:
        """Count one request against each limit of :data:`PLAN_REQUEST_LIMITS` the customer's plan sets.

        The windows are hit shortest first; a refused hit stops there, so a request refused by the
        minute limit does not use up the hour's. The last result is the refusal, if any; an empty
        list means the plan sets no request limit.

        Commits: the plan is read in one transaction and each counter is written in one of its
        own, re-run after a deadlock or a lock wait timeout (see the module's docstring). Call it
        on a service of its own, not inside a transaction holding other work.
        """
        moment = now if now is not None else utc_now()
        entitlements = await self.svc.entitlements.for_customer(customer_id)
        await self.svc.commit()
        results: list[RateLimitResult] = []
        for scope, window in PLAN_REQUEST_LIMITS:
            limit = entitlements.limit(scope)
            if limit is None:
                continue
            result = await self._hit_alone(customer_id, scope=scope, limit=limit, window=window, now=moment)
            results.append(result)
            if not result.allowed:
                break
        return results

    async def _hit_alone(
        self, customer_id: uuid.UUID, *, scope: str, limit: int, window: timedelta, now: datetime
    ) -> RateLimitResult:
        """:meth:`hit` in a transaction of its own, re-run when the database reports a transient fault."""
        for rerun in range(_TRANSIENT_RERUNS + 1):
            try:
                result = await self.hit(customer_id, scope=scope, limit=limit, window=window, now=now)
                await self.svc.commit()
                return result
            except DBAPIError as exc:
                await self.svc.rollback()
                if not is_transient(exc) or rerun == _TRANSIENT_RERUNS:
                    raise
                # A short random pause, so the transactions that met do not meet again at once.
                await anyio.sleep(random.uniform(0, 0.005 * (rerun + 1)))  # noqa: S311 (not a secret)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def purge(self, older_than: datetime) -> int:
        """Delete the counters of windows that started before ``older_than``; how many were deleted."""
        if older_than.tzinfo is None or older_than.utcoffset() is None:
            raise ValidationError("older_than must be a timezone-aware datetime", field="older_than")
        result = await self.session.execute(sa.delete(_counters).where(_counters.c.window_start < older_than))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _increment(self, customer_id: uuid.UUID, scope: str, start: datetime) -> int:
        """Add one to the window's counter, creating it at 1; the new count."""
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "customer_id": customer_id,
            "scope": scope,
            "window_start": start,
            "count": 1,
        }
        key = (_counters.c.customer_id, _counters.c.scope, _counters.c.window_start)
        bump = {"count": _counters.c.count + 1}
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            pg_stmt = postgresql.insert(_counters).values(values)
            pg_stmt = pg_stmt.on_conflict_do_update(index_elements=key, set_=bump)
            return int((await self.session.execute(pg_stmt.returning(_counters.c.count))).scalar_one())
        if dialect == "sqlite":
            lite_stmt = sqlite.insert(_counters).values(values)
            lite_stmt = lite_stmt.on_conflict_do_update(index_elements=key, set_=bump)
            return int((await self.session.execute(lite_stmt.returning(_counters.c.count))).scalar_one())
        if dialect in ("mysql", "mariadb"):
            # The window's row usually exists: an UPDATE locks it exclusively at once, where the
            # upsert would first take a shared lock on the duplicate key and then upgrade it, the
            # step on which concurrent upserts deadlock.
            where = (
                _counters.c.customer_id == customer_id,
                _counters.c.scope == scope,
                _counters.c.window_start == start,
            )
            bumped = await self.session.execute(sa.update(_counters).where(*where).values(bump))
            if bumped.rowcount == 1:  # type: ignore[attr-defined]
                return await self._read(customer_id, scope, start)
            my_stmt = mysql.insert(_counters).values(values).on_duplicate_key_update(bump)
            await self.session.execute(my_stmt)
            # The upsert left the row locked by this transaction: nobody else's hit can land
            # between it and this read.
            return await self._read(customer_id, scope, start)
        return await self._increment_portably(values, customer_id, scope, start)

    async def _read(self, customer_id: uuid.UUID, scope: str, start: datetime) -> int:
        stmt = sa.select(_counters.c.count).where(
            _counters.c.customer_id == customer_id,
            _counters.c.scope == scope,
            _counters.c.window_start == start,
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def _increment_portably(
        self, values: dict[str, Any], customer_id: uuid.UUID, scope: str, start: datetime
    ) -> int:
        """Other databases: UPDATE, else INSERT (in a savepoint), else UPDATE the row that won."""
        where = (
            _counters.c.customer_id == customer_id,
            _counters.c.scope == scope,
            _counters.c.window_start == start,
        )
        update = sa.update(_counters).where(*where).values(count=_counters.c.count + 1)
        if (await self.session.execute(update)).rowcount == 1:  # type: ignore[attr-defined]
            return await self._read(customer_id, scope, start)
        try:
            async with self.session.begin_nested():
                await self.session.execute(sa.insert(_counters).values(values))
            return 1
        except DBAPIError as exc:
            if not is_integrity_error(exc):
                raise
        await self.session.execute(update)
        return await self._read(customer_id, scope, start)
