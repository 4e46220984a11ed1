"""Tests for the canonical statuses and their status machines."""

from __future__ import annotations

from collections import deque
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_cashier.errors import ConflictError, ErrorCode, InvalidTransitionError
from fastapi_cashier.statuses import (
    INVOICE_MACHINE,
    PAYMENT_MACHINE,
    SUBSCRIPTION_MACHINE,
    InvoiceStatus,
    PaymentStatus,
    StatusMachine,
    SubscriptionStatus,
)

P = PaymentStatus
S = SubscriptionStatus
I = InvoiceStatus  # noqa: E741

# (machine, its enum, the status a new object starts in, the statuses nothing moves from)
MACHINES: list[tuple[StatusMachine[Any], type[StrEnum], StrEnum, frozenset[StrEnum]]] = [
    (PAYMENT_MACHINE, PaymentStatus, P.PENDING, frozenset({P.REFUNDED, P.CANCELED})),
    (SUBSCRIPTION_MACHINE, SubscriptionStatus, S.INCOMPLETE, frozenset({S.EXPIRED})),
    (INVOICE_MACHINE, InvoiceStatus, I.DRAFT, frozenset({I.PAID, I.VOID})),
]
MACHINE_IDS = ["payment", "subscription", "invoice"]

property_settings = settings(database=None, deadline=None, max_examples=200)


@pytest.mark.parametrize(("machine", "enum", "initial", "terminal"), MACHINES, ids=MACHINE_IDS)
def test_every_member_is_a_key(
    machine: StatusMachine[Any], enum: type[StrEnum], initial: StrEnum, terminal: frozenset[StrEnum]
) -> None:
    assert machine.statuses == frozenset(enum)
    for status in enum:
        assert machine.targets(status) <= machine.statuses


@pytest.mark.parametrize(("machine", "enum", "initial", "terminal"), MACHINES, ids=MACHINE_IDS)
def test_terminal_sets(
    machine: StatusMachine[Any], enum: type[StrEnum], initial: StrEnum, terminal: frozenset[StrEnum]
) -> None:
    assert machine.terminal == terminal
    for status in terminal:
        assert machine.targets(status) == frozenset()


def test_entities_and_canonical_values() -> None:
    assert PAYMENT_MACHINE.entity == "payment"
    assert SUBSCRIPTION_MACHINE.entity == "subscription"
    assert INVOICE_MACHINE.entity == "invoice"
    assert [status.value for status in PaymentStatus] == [
        "pending",
        "requires_action",
        "processing",
        "succeeded",
        "failed",
        "canceled",
        "refunded",
        "partially_refunded",
    ]
    assert [status.value for status in SubscriptionStatus] == [
        "incomplete",
        "trialing",
        "active",
        "past_due",
        "paused",
        "canceled",
        "expired",
    ]
    assert [status.value for status in InvoiceStatus] == ["draft", "open", "paid", "void", "uncollectible"]


ALLOWED: list[tuple[StatusMachine[Any], StrEnum, StrEnum]] = [
    (PAYMENT_MACHINE, P.PENDING, P.SUCCEEDED),
    (PAYMENT_MACHINE, P.PENDING, P.REQUIRES_ACTION),
    (PAYMENT_MACHINE, P.REQUIRES_ACTION, P.PROCESSING),
    (PAYMENT_MACHINE, P.PROCESSING, P.SUCCEEDED),
    (PAYMENT_MACHINE, P.PROCESSING, P.FAILED),
    (PAYMENT_MACHINE, P.FAILED, P.SUCCEEDED),
    (PAYMENT_MACHINE, P.SUCCEEDED, P.PARTIALLY_REFUNDED),
    (PAYMENT_MACHINE, P.SUCCEEDED, P.REFUNDED),
    (PAYMENT_MACHINE, P.PARTIALLY_REFUNDED, P.REFUNDED),
    (SUBSCRIPTION_MACHINE, S.INCOMPLETE, S.ACTIVE),
    (SUBSCRIPTION_MACHINE, S.TRIALING, S.ACTIVE),
    (SUBSCRIPTION_MACHINE, S.ACTIVE, S.PAST_DUE),
    (SUBSCRIPTION_MACHINE, S.PAST_DUE, S.ACTIVE),
    (SUBSCRIPTION_MACHINE, S.ACTIVE, S.PAUSED),
    (SUBSCRIPTION_MACHINE, S.PAUSED, S.ACTIVE),
    (SUBSCRIPTION_MACHINE, S.ACTIVE, S.CANCELED),
    (SUBSCRIPTION_MACHINE, S.CANCELED, S.EXPIRED),
    (INVOICE_MACHINE, I.DRAFT, I.OPEN),
    (INVOICE_MACHINE, I.OPEN, I.PAID),
    (INVOICE_MACHINE, I.OPEN, I.UNCOLLECTIBLE),
    (INVOICE_MACHINE, I.UNCOLLECTIBLE, I.PAID),
    (INVOICE_MACHINE, I.OPEN, I.VOID),
]

REFUSED: list[tuple[StatusMachine[Any], StrEnum, StrEnum]] = [
    (PAYMENT_MACHINE, P.SUCCEEDED, P.PENDING),
    (PAYMENT_MACHINE, P.SUCCEEDED, P.FAILED),
    (PAYMENT_MACHINE, P.PENDING, P.REFUNDED),
    (PAYMENT_MACHINE, P.PENDING, P.PARTIALLY_REFUNDED),
    (PAYMENT_MACHINE, P.PARTIALLY_REFUNDED, P.SUCCEEDED),
    (PAYMENT_MACHINE, P.CANCELED, P.PENDING),
    (SUBSCRIPTION_MACHINE, S.EXPIRED, S.ACTIVE),
    (SUBSCRIPTION_MACHINE, S.CANCELED, S.ACTIVE),
    (SUBSCRIPTION_MACHINE, S.ACTIVE, S.INCOMPLETE),
    (SUBSCRIPTION_MACHINE, S.INCOMPLETE, S.PAST_DUE),
    (INVOICE_MACHINE, I.PAID, I.VOID),
    (INVOICE_MACHINE, I.PAID, I.OPEN),
    (INVOICE_MACHINE, I.VOID, I.PAID),
    (INVOICE_MACHINE, I.OPEN, I.DRAFT),
    (INVOICE_MACHINE, I.DRAFT, I.UNCOLLECTIBLE),
    *[(PAYMENT_MACHINE, P.REFUNDED, target) for target in PaymentStatus],
    *[(SUBSCRIPTION_MACHINE, S.EXPIRED, target) for target in SubscriptionStatus],
    *[(INVOICE_MACHINE, I.VOID, target) for target in InvoiceStatus],
]


def _move_id(move: tuple[StatusMachine[Any], StrEnum, StrEnum]) -> str:
    machine, current, new = move
    return f"{machine.entity}:{current.value}->{new.value}"


@pytest.mark.parametrize("move", ALLOWED, ids=_move_id)
def test_allowed_moves(move: tuple[StatusMachine[Any], StrEnum, StrEnum]) -> None:
    machine, current, new = move
    assert machine.can(current, new) is True
    assert new in machine.targets(current)
    machine.require(current, new)  # does not raise


@pytest.mark.parametrize("move", REFUSED, ids=_move_id)
def test_refused_moves(move: tuple[StatusMachine[Any], StrEnum, StrEnum]) -> None:
    machine, current, new = move
    assert machine.can(current, new) is False
    assert new not in machine.targets(current)
    with pytest.raises(InvalidTransitionError) as info:
        machine.require(current, new)
    error = info.value
    assert f"'{current.value}'" in error.message
    assert f"'{new.value}'" in error.message
    assert machine.entity in error.message
    assert error.details == {"entity": machine.entity, "from": current.value, "to": new.value}
    assert error.code is ErrorCode.INVALID_TRANSITION
    assert isinstance(error, ConflictError)


def test_refused_message_lists_the_allowed_moves() -> None:
    with pytest.raises(InvalidTransitionError) as info:
        PAYMENT_MACHINE.require(P.PARTIALLY_REFUNDED, P.PENDING)
    assert "may move to refunded" in str(info.value)
    with pytest.raises(InvalidTransitionError) as info:
        INVOICE_MACHINE.require(I.PAID, I.VOID)
    assert "terminal" in str(info.value)


@pytest.mark.parametrize(("machine", "enum", "initial", "terminal"), MACHINES, ids=MACHINE_IDS)
def test_staying_put_is_not_a_move(
    machine: StatusMachine[Any], enum: type[StrEnum], initial: StrEnum, terminal: frozenset[StrEnum]
) -> None:
    for status in enum:
        assert machine.can(status, status) is False
        assert status not in machine.targets(status)
        with pytest.raises(InvalidTransitionError):
            machine.require(status, status)


def _reachable(machine: StatusMachine[Any], start: StrEnum) -> set[StrEnum]:
    seen = {start}
    queue = deque([start])
    while queue:
        for target in machine.targets(queue.popleft()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


@pytest.mark.parametrize(("machine", "enum", "initial", "terminal"), MACHINES, ids=MACHINE_IDS)
def test_every_status_is_reachable_from_the_initial_status(
    machine: StatusMachine[Any], enum: type[StrEnum], initial: StrEnum, terminal: frozenset[StrEnum]
) -> None:
    reachable = _reachable(machine, initial)
    assert reachable == set(enum)
    assert set(enum) - terminal <= reachable


@pytest.mark.parametrize(("machine", "enum", "initial", "terminal"), MACHINES, ids=MACHINE_IDS)
def test_every_status_can_end(
    machine: StatusMachine[Any], enum: type[StrEnum], initial: StrEnum, terminal: frozenset[StrEnum]
) -> None:
    """No status is a trap: from each one some terminal status can be reached."""
    for status in enum:
        assert _reachable(machine, status) & terminal, status


@pytest.mark.parametrize(("machine", "enum", "initial", "terminal"), MACHINES, ids=MACHINE_IDS)
@property_settings
@given(data=st.data())
def test_random_walks_follow_the_machine(
    machine: StatusMachine[Any],
    enum: type[StrEnum],
    initial: StrEnum,
    terminal: frozenset[StrEnum],
    data: st.DataObject,
) -> None:
    current = initial
    steps = data.draw(st.integers(min_value=0, max_value=30), label="steps")
    for _ in range(steps):
        targets = machine.targets(current)
        if not targets:
            break
        new = data.draw(st.sampled_from(sorted(targets)), label=f"from {current.value}")
        assert machine.can(current, new)
        machine.require(current, new)
        current = new
    if current in terminal:
        assert machine.targets(current) == frozenset()
        for other in enum:
            assert not machine.can(current, other)
            with pytest.raises(InvalidTransitionError):
                machine.require(current, other)
    else:
        assert machine.targets(current)


@pytest.mark.parametrize(("machine", "enum", "initial", "terminal"), MACHINES, ids=MACHINE_IDS)
@property_settings
@given(data=st.data())
def test_can_and_require_agree(
    machine: StatusMachine[Any],
    enum: type[StrEnum],
    initial: StrEnum,
    terminal: frozenset[StrEnum],
    data: st.DataObject,
) -> None:
    current = data.draw(st.sampled_from(list(enum)))
    new = data.draw(st.sampled_from(list(enum)))
    if machine.can(current, new):
        machine.require(current, new)
    else:
        with pytest.raises(InvalidTransitionError):
            machine.require(current, new)


# -- construction ------------------------------------------------------------------------------


class _Light(StrEnum):
    RED = "red"
    GREEN = "green"
    YELLOW = "yellow"


def test_construction_refuses_undeclared_targets() -> None:
    with pytest.raises(ValueError, match=r"light machine moves to undeclared statuses: .*yellow"):
        StatusMachine(
            "light", {_Light.RED: frozenset({_Light.GREEN}), _Light.GREEN: frozenset({_Light.YELLOW})}
        )


def test_construction_of_a_closed_table() -> None:
    machine = StatusMachine(
        "light",
        {
            _Light.RED: frozenset({_Light.GREEN}),
            _Light.GREEN: frozenset({_Light.YELLOW}),
            _Light.YELLOW: frozenset(),
        },
    )
    assert machine.statuses == frozenset(_Light)
    assert machine.terminal == frozenset({_Light.YELLOW})
    assert machine.can(_Light.RED, _Light.GREEN)
    assert not machine.can(_Light.GREEN, _Light.RED)


def test_machine_does_not_follow_later_changes_to_the_table() -> None:
    table = {_Light.RED: frozenset({_Light.GREEN}), _Light.GREEN: frozenset()}
    machine = StatusMachine("light", table)
    table[_Light.GREEN] = frozenset({_Light.RED})
    assert not machine.can(_Light.GREEN, _Light.RED)
