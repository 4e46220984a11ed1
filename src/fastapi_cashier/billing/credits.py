"""Credits: a balance per customer and the ledger of every change to it.

Every change writes a :class:`~fastapi_cashier.db.models.CreditTransaction` with the balance
right after it (the account row stays locked by the change until the transaction commits, so
``balance_after`` is exact). The balance never goes below zero: consumption is one conditional
``UPDATE ... SET balance = balance - n WHERE balance >= n``, and the database's check constraint
backs it up.

An ``idempotency_key`` (unique per account) makes a change happen once: repeating it returns the
first transaction without changing the balance again; reusing it for a different change is an
:class:`~fastapi_cashier.errors.IdempotencyConflictError`.

Expiry: a grant with ``expires_at`` loses, once that time has passed, what is left of it. What is
left is found first-in-first-out: every consumption (and every negative adjustment) is taken from
the oldest credits first, in the order they were granted, skipping what earlier expiries already
removed. The expired amount is what is left of the grant, never more than the current balance.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from ..db.base_repository import Page, is_integrity_error, translate_integrity_error
from ..db.model_repositories import CreditAccountRepository, CreditTransactionRepository
from ..db.models import CreditAccount, CreditTransaction, PlanFeature, Subscription
from ..errors import (
    ConflictError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    NotFoundError,
    ValidationError,
)
from ..statuses import CreditTransactionKind
from ._base import DomainService
from ._base import now as utc_now

__all__ = ["CREDITS_PER_PERIOD", "MAX_CREDITS", "CreditService"]

#: The plan feature (a numeric limit) that grants credits at the start of every billing period.
CREDITS_PER_PERIOD = "credits_per_period"
#: The most credits one transaction may move.
MAX_CREDITS = 10**15

_EXPIRE_KEY = "expire:"
_MAX_TEXT = {"reason": 500, "reference": 255, "idempotency_key": 255}


class CreditService(DomainService):
    """Credit balances and their ledger: grant, consume, refund, adjust, expire."""

    @property
    def _accounts(self) -> CreditAccountRepository:
        return CreditAccountRepository(session=self.session)

    @property
    def _transactions(self) -> CreditTransactionRepository:
        return CreditTransactionRepository(session=self.session)

    # ------------------------------------------------------------------ reading

    async def account(self, customer_id: uuid.UUID) -> CreditAccount:
        """The customer's credit account, created (empty) on first use.

        Two first uses racing end with the same row: the loser of the unique constraint reads
        the winner's.

        Raises:
            NotFoundError: there is no such customer.
        """
        found = await self._accounts.for_customer(customer_id)
        if found is not None:
            return found
        try:
            return await self._accounts.add(CreditAccount(customer_id=customer_id, balance=0))
        except ConflictError as exc:
            winner = await self._accounts.for_customer(customer_id)
            if winner is not None:
                return winner
            if exc.details.get("constraint_kind") == "foreign_key":
                raise NotFoundError(
                    f"customer {customer_id} was not found", details={"id": str(customer_id)}
                ) from exc
            raise

    async def balance(self, customer_id: uuid.UUID) -> int:
        """The customer's balance (0 when they never had credits)."""
        stmt = sa.select(CreditAccount.balance).where(CreditAccount.customer_id == customer_id)
        value = await self.session.scalar(stmt)
        return int(value) if value is not None else 0

    async def transactions(
        self, customer_id: uuid.UUID, *, limit: int = 20, cursor: str | None = None
    ) -> Page[CreditTransaction]:
        """The customer's ledger, newest first, keyset-paginated."""
        account = await self._accounts.for_customer(customer_id)
        account_id = account.id if account is not None else uuid.UUID(int=0)
        return await self._transactions.paginate(
            CreditTransaction.account_id == account_id, limit=limit, cursor=cursor
        )

    # ------------------------------------------------------------------ changes

    async def grant(
        self,
        customer_id: uuid.UUID,
        amount: int,
        *,
        reason: str,
        reference: str | None = None,
        expires_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> CreditTransaction:
        """Add ``amount`` credits, optionally expiring at ``expires_at``.

        Raises:
            ValidationError: ``amount`` is not a positive integer; a text is too long; a naive
                ``expires_at``.
            IdempotencyConflictError: ``idempotency_key`` was used for another change.
        """
        _check_amount(amount, "amount")
        _check_texts(reason=reason, reference=reference, idempotency_key=idempotency_key)
        if expires_at is not None and (expires_at.tzinfo is None or expires_at.utcoffset() is None):
            raise ValidationError("expires_at must be a timezone-aware datetime", field="expires_at")
        account = await self.account(customer_id)
        transaction, _created = await self._change(
            account,
            kind=CreditTransactionKind.GRANT,
            delta=amount,
            reason=reason,
            reference=reference,
            expires_at=expires_at,
            idempotency_key=idempotency_key,
        )
        return transaction

    async def consume(
        self,
        customer_id: uuid.UUID,
        amount: int,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Take ``amount`` credits atomically; the new balance.

        Concurrent consumers can never take the balance below zero. Repeating an
        ``idempotency_key`` returns the balance the first call left, consuming nothing.

        Raises:
            InsufficientCreditsError: too few credits; ``details`` are ``{"balance", "requested"}``.
            IdempotencyConflictError: ``idempotency_key`` was used for another change.
        """
        _check_amount(amount, "amount")
        _check_texts(reason=reason, idempotency_key=idempotency_key)
        account = await self._accounts.for_customer(customer_id)
        if account is None:
            raise _not_enough(0, amount, CreditTransactionKind.CONSUME)
        transaction, _created = await self._change(
            account,
            kind=CreditTransactionKind.CONSUME,
            delta=-amount,
            reason=reason,
            idempotency_key=idempotency_key,
        )
        return transaction.balance_after

    async def refund(
        self,
        customer_id: uuid.UUID,
        amount: int,
        *,
        reason: str,
        reference: str | None = None,
        idempotency_key: str | None = None,
    ) -> CreditTransaction:
        """Give back ``amount`` consumed credits (the work they paid for failed, say)."""
        _check_amount(amount, "amount")
        _check_texts(reason=reason, reference=reference, idempotency_key=idempotency_key)
        account = await self.account(customer_id)
        transaction, _created = await self._change(
            account,
            kind=CreditTransactionKind.REFUND,
            delta=amount,
            reason=reason,
            reference=reference,
            idempotency_key=idempotency_key,
        )
        return transaction

    async def adjust(
        self, customer_id: uuid.UUID, delta: int, *, reason: str, actor: str | None
    ) -> CreditTransaction:
        """An admin's correction by ``delta`` credits (either sign); never below zero.

        The transaction's ``reference`` records who made it (``"admin:<actor>"``).

        Raises:
            ValidationError: ``delta`` is zero or not an integer.
            ConflictError: a negative ``delta`` larger than the balance.
        """
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_CREDITS:
            raise ValidationError(
                f"delta must be a non-zero integer of at most {MAX_CREDITS} either way", field="delta"
            )
        reference = f"admin:{actor}"[: _MAX_TEXT["reference"]] if actor else None
        _check_texts(reason=reason)
        account = await self.account(customer_id)
        transaction, _created = await self._change(
            account, kind=CreditTransactionKind.ADJUST, delta=delta, reason=reason, reference=reference
        )
        return transaction

    async def grant_for_period(
        self,
        subscription: Subscription,
        plan_features: Iterable[PlanFeature] | Mapping[str, bool | int | str],
        period_start: datetime,
        period_end: datetime,
    ) -> CreditTransaction | None:
        """Grant the plan's ``credits_per_period`` for one billing period, once.

        The credits expire at ``period_end``. The idempotency key
        ``period:<subscription id>:<period start, ISO 8601 UTC>`` makes a repeated call for the
        same period (a redelivered or replayed event) return the first grant.

        Returns:
            The grant, or ``None`` when the plan grants no credits per period.
        """
        amount = _credits_per_period(plan_features)
        if amount is None or amount <= 0:
            return None
        start = period_start.astimezone(UTC).isoformat()
        account = await self.account(subscription.customer_id)
        transaction, _created = await self._change(
            account,
            kind=CreditTransactionKind.GRANT,
            delta=min(amount, MAX_CREDITS),
            reason=f"credits for the billing period starting {start}",
            reference=f"subscription:{subscription.id}",
            expires_at=period_end,
            idempotency_key=f"period:{subscription.id}:{start}",
            # The plan may have changed since the first grant of this period: keep that one.
            strict=False,
        )
        return transaction

    async def expire_due(self, now: datetime | None = None) -> int:
        """Expire what is left of every grant whose ``expires_at`` has passed; credits expired.

        Meant for a periodic job, in a transaction of its own. Each grant is expired at most
        once (idempotency key ``expire:<grant id>``), so running it twice, or in two processes,
        changes nothing the second time. See the module docstring for what "left" means.
        """
        moment = now if now is not None else utc_now()
        stmt = (
            sa.select(CreditTransaction.account_id)
            .join(CreditAccount, CreditAccount.id == CreditTransaction.account_id)
            .where(
                CreditTransaction.amount > 0,
                CreditTransaction.expires_at.is_not(None),
                CreditTransaction.expires_at <= moment,
                CreditAccount.balance > 0,
            )
            .distinct()
        )
        account_ids = (await self.session.execute(stmt)).scalars().all()
        expired = 0
        for account_id in account_ids:
            expired += await self._expire_account(account_id, moment)
        return expired

    # ------------------------------------------------------------------ internals

    async def _expire_account(self, account_id: uuid.UUID, moment: datetime) -> int:
        # Consumers wait on this lock (PostgreSQL, MariaDB); SQLite has one writer at a time.
        account = await self._accounts.get(account_id, for_update=True)
        rows = (
            await self.session.execute(
                sa.select(CreditTransaction)
                .where(CreditTransaction.account_id == account_id, CreditTransaction.amount > 0)
                .order_by(CreditTransaction.created_at, CreditTransaction.id)
            )
        ).scalars()
        lots = list(rows)
        expired_keys = (
            await self.session.execute(
                sa.select(CreditTransaction.idempotency_key, CreditTransaction.amount).where(
                    CreditTransaction.account_id == account_id,
                    CreditTransaction.kind == CreditTransactionKind.EXPIRE,
                )
            )
        ).all()
        already_expired = {str(key): -int(amount) for key, amount in expired_keys if key}
        consumed = await self.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(-CreditTransaction.amount), 0)).where(
                CreditTransaction.account_id == account_id,
                CreditTransaction.amount < 0,
                CreditTransaction.kind != CreditTransactionKind.EXPIRE,
            )
        )
        unattributed = int(consumed or 0)
        left: dict[uuid.UUID, int] = {}
        for lot in lots:  # first in, first out
            available = max(0, lot.amount - already_expired.get(_expire_key(lot.id), 0))
            taken = min(available, unattributed)
            unattributed -= taken
            left[lot.id] = available - taken
        due = [
            lot
            for lot in lots
            if lot.expires_at is not None
            and lot.expires_at <= moment
            and _expire_key(lot.id) not in already_expired
        ]
        total = 0
        for lot in sorted(due, key=lambda lot: (lot.expires_at or moment, lot.created_at)):
            amount = min(left[lot.id], await self._balance_of(account_id))
            if amount <= 0:
                continue
            _transaction, created = await self._change(
                account,
                kind=CreditTransactionKind.EXPIRE,
                delta=-amount,
                reason=f"credits granted {lot.created_at.isoformat()} expired",
                reference=str(lot.id),
                idempotency_key=_expire_key(lot.id),
                strict=False,
            )
            if created:
                total += amount
        return total

    async def _change(
        self,
        account: CreditAccount,
        *,
        kind: CreditTransactionKind,
        delta: int,
        reason: str | None,
        reference: str | None = None,
        expires_at: datetime | None = None,
        idempotency_key: str | None = None,
        strict: bool = True,
    ) -> tuple[CreditTransaction, bool]:
        """Move the balance by ``delta`` and write its ledger line; (the line, whether it is new).

        The balance change and the line are one savepoint: if the line cannot be written (a
        concurrent change took the idempotency key), the balance change is undone too.
        """
        if idempotency_key is not None:
            existing = await self._by_key(account.id, idempotency_key)
            if existing is not None:
                return _same_change(existing, kind, delta, strict), False
        try:
            async with self.session.begin_nested():
                if delta > 0:
                    balance = await self._add(account.id, delta)
                else:
                    taken = await self._accounts.consume(account.id, -delta)
                    if taken is None:
                        raise _not_enough(await self._balance_of(account.id), -delta, kind)
                    balance = taken
                transaction = CreditTransaction(
                    account_id=account.id,
                    kind=kind,
                    amount=delta,
                    balance_after=balance,
                    reason=reason,
                    reference=reference,
                    idempotency_key=idempotency_key,
                    expires_at=expires_at,
                )
                self.session.add(transaction)
                await self.session.flush()
        except DBAPIError as exc:
            if not is_integrity_error(exc):
                raise
            if idempotency_key is not None:
                winner = await self._by_key(account.id, idempotency_key)
                if winner is not None:
                    return _same_change(winner, kind, delta, strict), False
            raise translate_integrity_error(exc, what="credit transaction") from exc
        return transaction, True

    async def _add(self, account_id: uuid.UUID, amount: int) -> int:
        stmt = (
            sa.update(CreditAccount)
            .where(CreditAccount.id == account_id)
            .values(balance=CreditAccount.balance + amount, updated_at=utc_now())
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)
        # The UPDATE keeps the row locked until commit: this is our own balance.
        return await self._balance_of(account_id)

    async def _balance_of(self, account_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            sa.select(CreditAccount.balance).where(CreditAccount.id == account_id)
        )
        return int(value or 0)

    async def _by_key(self, account_id: uuid.UUID, key: str) -> CreditTransaction | None:
        return await self._transactions.first(
            CreditTransaction.account_id == account_id, CreditTransaction.idempotency_key == key
        )


def _expire_key(grant_id: uuid.UUID) -> str:
    return f"{_EXPIRE_KEY}{grant_id}"


def _same_change(
    existing: CreditTransaction, kind: CreditTransactionKind, delta: int, strict: bool
) -> CreditTransaction:
    if strict and (existing.kind != kind or existing.amount != delta):
        raise IdempotencyConflictError(
            "this idempotency_key was already used for a different credit change",
            details={"kind": existing.kind.value, "amount": existing.amount},
        )
    return existing


def _not_enough(balance: int, requested: int, kind: CreditTransactionKind) -> ConflictError:
    """Too few credits: a customer must top up (402); an admin's adjustment conflicts (409)."""
    details = {"balance": balance, "requested": requested}
    if kind is CreditTransactionKind.CONSUME:
        return InsufficientCreditsError(
            f"not enough credits: {requested} requested, {balance} available", details=details
        )
    return ConflictError(f"the balance is {balance}: it cannot go {requested} lower", details=details)


def _check_amount(amount: int, field: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_CREDITS:
        raise ValidationError(f"{field} must be an integer from 1 to {MAX_CREDITS}", field=field)


def _check_texts(**texts: str | None) -> None:
    for field, text in texts.items():
        if text is not None and len(text) > _MAX_TEXT[field]:
            raise ValidationError(f"{field} must be at most {_MAX_TEXT[field]} characters", field=field)


def _credits_per_period(features: Iterable[PlanFeature] | Mapping[str, bool | int | str]) -> int | None:
    if isinstance(features, Mapping):
        value = features.get(CREDITS_PER_PERIOD)
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    for feature in features:
        if feature.key == CREDITS_PER_PERIOD and feature.limit is not None:
            return int(feature.limit)
    return None
