"""The reliability scenario: subscriptions, their provider timelines as signed fake events, the checks.

Each of ``objects`` subscriptions gets a timeline of provider states, one ``subscription.*`` event
per state with strictly increasing ``created`` seconds. Every status of a timeline can be reached
from every earlier one in one move the subscription machine allows (``active`` and ``past_due``
alternate; a timeline may end ``canceled``, or ``canceled`` then ``expired``), so whichever event
arrives first, the newest state can always be applied and the ordering guard skips the older ones.

Every subscription has a twin row that receives the same timeline in order, one event after the
other; the shuffled subscription must end exactly like its twin, and both like the last state.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import anyio
import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fastapi_cashier.db import models as m
from fastapi_cashier.providers.base import EventType
from fastapi_cashier.providers.fake.wire import encode_event, sign_headers
from fastapi_cashier.statuses import SubscriptionStatus, WebhookEventStatus
from fastapi_cashier.webhooks.inbox import WebhookInbox

from ..db import factories
from ..http.conftest import WEBHOOK_SECRET
from .app import PID_HEADER

__all__ = [
    "PID_HEADER",
    "WEBHOOK_PATH",
    "Answer",
    "Catalog",
    "Deliver",
    "Event",
    "Figures",
    "Scenario",
    "State",
    "SubscriptionView",
    "deliver_concurrently",
    "deliver_in_order",
    "make_scenario",
    "over_http",
    "payment_event",
    "post_event",
    "seed_catalog",
    "seed_subscriptions",
    "shuffled_with_duplicates",
    "subscription_event",
    "to_inbox",
    "verify",
]

PREFIX = "/billing"
WEBHOOK_PATH = f"{PREFIX}/webhooks/fake"
#: The start of every subscription's first period, and the length of a period.
ANCHOR = datetime(2025, 1, 1, tzinfo=UTC)
PERIOD = timedelta(days=30)
#: ``created`` of the first event of the first object; objects are 10,000 s apart, events 10 s.
FIRST_CREATED = 1_750_000_000

_ACTIVE = SubscriptionStatus.ACTIVE
_PAST_DUE = SubscriptionStatus.PAST_DUE
_CANCELED = SubscriptionStatus.CANCELED
_EXPIRED = SubscriptionStatus.EXPIRED
_TYPES = {
    _ACTIVE: EventType.SUBSCRIPTION_UPDATED,
    _PAST_DUE: EventType.SUBSCRIPTION_UPDATED,
    _CANCELED: EventType.SUBSCRIPTION_CANCELED,
    _EXPIRED: EventType.SUBSCRIPTION_EXPIRED,
}


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class State:
    """One provider state of a subscription."""

    status: SubscriptionStatus
    quantity: int
    plan: int | None  # index into the seeded plans; None: the event names no plan (it stays)
    period: int  # completed renewals since ANCHOR
    cancel_at_period_end: bool
    canceled_seq: int | None  # the step at which the subscription was canceled


@dataclass(frozen=True, slots=True)
class Event:
    """A signed-on-delivery fake event about one subscription (or payment)."""

    event_id: str
    object_id: str
    seq: int
    created: int
    body: bytes
    status: SubscriptionStatus | None = None


def _created(index: int, seq: int) -> int:
    return FIRST_CREATED + index * 10_000 + seq * 10


def subscription_object(
    object_id: str, state: State, *, index: int, seq: int, plan_ids: Sequence[uuid.UUID]
) -> dict[str, Any]:
    """A fake subscription in the shape of ``FakeSubscription.to_object()``."""
    start = ANCHOR + state.period * PERIOD
    canceled_at = None if state.canceled_seq is None else _created(index, state.canceled_seq)
    return {
        "object": "subscription",
        "id": object_id,
        "status": state.status.value,
        "customer": f"cus_{object_id}",
        "price": f"price_{state.plan or 0}",
        "quantity": state.quantity,
        "current_period_start": _unix(start),
        "current_period_end": _unix(start + PERIOD),
        "trial_start": None,
        "trial_end": None,
        "cancel_at_period_end": state.cancel_at_period_end,
        "canceled_at": canceled_at,
        "ended_at": _created(index, seq) if state.status is _EXPIRED else None,
        "paused": False,
        "metadata": {} if state.plan is None else {"plan_id": str(plan_ids[state.plan])},
        "created": _unix(ANCHOR),
        "updated": _created(index, seq),
    }


def subscription_event(
    event_id: str, object_id: str, state: State, *, index: int, seq: int, plan_ids: Sequence[uuid.UUID]
) -> Event:
    created = _created(index, seq)
    obj = subscription_object(object_id, state, index=index, seq=seq, plan_ids=plan_ids)
    body = encode_event(event_id, _TYPES[state.status], created, obj)
    return Event(event_id, object_id, seq, created, body, state.status)


def payment_event(event_id: str, provider_payment_id: str, provider_subscription_id: str) -> Event:
    """A renewal payment of a subscription, succeeded: applying it creates the local payment row."""
    created = int(time.time())
    obj = {
        "object": "payment",
        "id": provider_payment_id,
        "status": "succeeded",
        "amount": 900,
        "currency": "EUR",
        "refunded_amount": 0,
        "description": "Renewal",
        "checkout_session": None,
        "invoice": None,
        "subscription": provider_subscription_id,
        "customer": f"cus_{provider_subscription_id}",
        "payment_method_summary": "visa 4242",
        "failure_code": None,
        "failure_message": None,
        "metadata": {},
        "created": created,
        "updated": created,
    }
    body = encode_event(event_id, EventType.PAYMENT_SUCCEEDED, created, obj)
    return Event(event_id, provider_payment_id, 0, created, body)


def _timeline(rng: random.Random, length: int) -> tuple[State, ...]:
    ending = rng.choice(["open", "open", "canceled", "expired"])
    closing = {"open": [], "canceled": [_CANCELED], "expired": [_CANCELED, _EXPIRED]}[ending]
    statuses = [rng.choice([_ACTIVE, _PAST_DUE]) for _ in range(length - len(closing))] + closing
    states: list[State] = []
    period, quantity = 0, 1
    # Once a timeline has changed plans, its events name the plan (a look-up the others skip).
    plan: int | None = None
    canceled_seq: int | None = None
    for seq, status in enumerate(statuses):
        if status is _CANCELED and canceled_seq is None:
            canceled_seq = seq
        if status in (_ACTIVE, _PAST_DUE):
            if rng.random() < 0.3:
                period += 1
            if rng.random() < 0.5:
                quantity = rng.randint(1, 12)
            if rng.random() < 0.03:
                plan = 1 if plan in (None, 0) else 0
        cancel_at_period_end = status is _ACTIVE and rng.random() < 0.2
        states.append(State(status, quantity, plan, period, cancel_at_period_end, canceled_seq))
    return tuple(states)


@dataclass(frozen=True)
class Scenario:
    """Timelines for ``len(timelines)`` subscriptions, and the ids of the rows and events."""

    token: str
    timelines: tuple[tuple[State, ...], ...]

    def object_id(self, index: int, *, twin: bool = False) -> str:
        return f"sub_{self.token}_{index:03d}" + ("_inorder" if twin else "")

    def object_ids(self, *, twin: bool = False) -> list[str]:
        return [self.object_id(index, twin=twin) for index in range(len(self.timelines))]

    def events(self, plan_ids: Sequence[uuid.UUID], *, twin: bool = False) -> list[list[Event]]:
        """Every object's events, in timeline order."""
        return [
            [
                subscription_event(
                    f"evt_{self.object_id(index, twin=twin)}_{seq:02d}",
                    self.object_id(index, twin=twin),
                    state,
                    index=index,
                    seq=seq,
                    plan_ids=plan_ids,
                )
                for seq, state in enumerate(timeline)
            ]
            for index, timeline in enumerate(self.timelines)
        ]


def make_scenario(seed: int, *, objects: int = 100, events_per_object: int = 20) -> Scenario:
    rng = random.Random(seed)
    token = f"{seed:x}{uuid.uuid4().hex[:6]}"
    return Scenario(token, tuple(_timeline(rng, events_per_object) for _ in range(objects)))


def shuffled_with_duplicates(
    events: Iterable[Event], *, duplicate_ratio: float, rng: random.Random
) -> list[Event]:
    """Every event once, ``duplicate_ratio`` of them twice, in a random order."""
    distinct = list(events)
    deliveries = distinct + rng.sample(distinct, round(len(distinct) * duplicate_ratio))
    rng.shuffle(deliveries)
    return deliveries


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Catalog:
    customer_id: uuid.UUID
    plan_ids: tuple[uuid.UUID, uuid.UUID]


async def seed_catalog(session_factory: async_sessionmaker[AsyncSession]) -> Catalog:
    """A customer, a product and two monthly plans."""
    async with session_factory() as session:
        customer = factories.customer()
        product = m.Product(name="Reliability")
        session.add_all([customer, product])
        await session.flush()
        plans = [factories.plan(product.id, name=name) for name in ("Basic", "Team")]
        session.add_all(plans)
        await session.commit()
        return Catalog(customer.id, (plans[0].id, plans[1].id))


async def seed_subscriptions(
    session_factory: async_sessionmaker[AsyncSession], catalog: Catalog, object_ids: Iterable[str]
) -> dict[str, uuid.UUID]:
    """An active subscription per provider id, on the first plan, in its first period."""
    rows = {
        object_id: m.Subscription(
            customer_id=catalog.customer_id,
            plan_id=catalog.plan_ids[0],
            provider="fake",
            provider_subscription_id=object_id,
            status=_ACTIVE,
            quantity=1,
            current_period_start=ANCHOR,
            current_period_end=ANCHOR + PERIOD,
        )
        for object_id in object_ids
    }
    async with session_factory() as session:
        session.add_all(rows.values())
        await session.commit()
    return {object_id: row.id for object_id, row in rows.items()}


# --------------------------------------------------------------------------- delivering


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one delivery: the endpoint's, or the inbox's when it was handed the event."""

    event_id: str
    http_status: int | None  # None: handed to ``WebhookInbox.receive``, no HTTP involved
    status: str | None  # processed | ignored | failed | duplicate
    pid: str | None


Deliver = Callable[[Event], Awaitable[Answer]]


async def post_event(client: httpx.AsyncClient, event: Event) -> Answer:
    """Sign ``event`` now and POST it to the fake provider's webhook endpoint."""
    headers = sign_headers(WEBHOOK_SECRET, event.body, int(time.time()))
    response = await client.post(WEBHOOK_PATH, content=event.body, headers=headers)
    status = response.json().get("status") if response.status_code == 200 else response.text
    return Answer(event.event_id, response.status_code, status, response.headers.get(PID_HEADER))


def over_http(client: httpx.AsyncClient) -> Deliver:
    """Deliveries POSTed to the webhook endpoint."""

    async def deliver(event: Event) -> Answer:
        return await post_event(client, event)

    return deliver


def to_inbox(inbox: WebhookInbox) -> Deliver:
    """Deliveries handed, signed, to ``inbox.receive`` in this process: the endpoint minus HTTP."""
    pid = str(os.getpid())

    async def deliver(event: Event) -> Answer:
        headers = sign_headers(WEBHOOK_SECRET, event.body, int(time.time()))
        result = await inbox.receive("fake", headers, event.body)
        return Answer(event.event_id, None, result.status, pid)

    return deliver


async def deliver_concurrently(
    deliver: Deliver, deliveries: Sequence[Event], answers: list[Answer], senders: int
) -> None:
    """``senders`` tasks take the next delivery of the list as soon as they are free."""
    queue = iter(deliveries)

    async def sender() -> None:
        for event in queue:
            answers.append(await deliver(event))

    async with anyio.create_task_group() as group:
        for _ in range(senders):
            group.start_soon(sender)


async def deliver_in_order(
    deliver: Deliver, timelines: Sequence[Sequence[Event]], answers: list[Answer], streams: int
) -> None:
    """Each timeline in order, one event after the other's answer; ``streams`` timelines at a time."""
    queue = iter(timelines)

    async def stream() -> None:
        for timeline in queue:
            for event in timeline:
                answers.append(await deliver(event))

    async with anyio.create_task_group() as group:
        for _ in range(streams):
            group.start_soon(stream)


# --------------------------------------------------------------------------- checking


class SubscriptionView(NamedTuple):
    """What in-order delivery decides about a subscription row."""

    status: SubscriptionStatus
    quantity: int
    plan_id: uuid.UUID
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_start: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    paused: bool
    provider_updated_at: datetime | None

    @classmethod
    def of(cls, row: m.Subscription) -> SubscriptionView:
        return cls(*(getattr(row, name) for name in cls._fields))

    @classmethod
    def expected(
        cls, state: State, *, index: int, seq: int, plan_ids: Sequence[uuid.UUID]
    ) -> SubscriptionView:
        """The row after ``state`` (the ``seq``-th of object ``index``) was applied."""
        start = ANCHOR + state.period * PERIOD

        def at(seconds: int | None) -> datetime | None:
            return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

        return cls(
            status=state.status,
            quantity=state.quantity,
            plan_id=plan_ids[state.plan or 0],
            current_period_start=start,
            current_period_end=start + PERIOD,
            trial_start=None,
            trial_end=None,
            cancel_at_period_end=state.cancel_at_period_end,
            canceled_at=at(None if state.canceled_seq is None else _created(index, state.canceled_seq)),
            ended_at=at(_created(index, seq)) if state.status is _EXPIRED else None,
            paused=False,
            provider_updated_at=at(_created(index, seq)),
        )


@dataclass
class Figures:
    """What a run delivered and what the inbox made of it."""

    deliveries: int = 0
    distinct_events: int = 0
    duplicate_deliveries: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    in_order_deliveries: int = 0
    objects_compared: int = 0
    mismatches: int = 0
    status_changes: int = 0
    pids: set[str] = field(default_factory=set)

    def summary(self) -> str:
        return (
            f"deliveries={self.deliveries} distinct={self.distinct_events} "
            f"duplicates={self.duplicate_deliveries} answers={self.answers} stored={self.stored} "
            f"attempts={self.attempts} in_order_deliveries={self.in_order_deliveries} "
            f"objects_compared={self.objects_compared} mismatches={self.mismatches} "
            f"status_changes={self.status_changes} processes={len(self.pids)}"
        )


def _check_answers(answers: Sequence[Answer], events: Mapping[str, Event]) -> dict[str, str]:
    """Every delivery answered 200; per event one answer applied it, every other one is a duplicate.

    Returns the applying answer's status per event id.
    """
    refused = [answer for answer in answers if answer.http_status not in (200, None)]
    assert not refused, f"{len(refused)} deliveries were not answered 200, e.g. {refused[:3]}"
    by_event: dict[str, list[str | None]] = defaultdict(list)
    for answer in answers:
        by_event[answer.event_id].append(answer.status)
    assert by_event.keys() == events.keys(), "deliveries and events differ"
    outcome: dict[str, str] = {}
    for event_id, statuses in by_event.items():
        applying = [status for status in statuses if status != "duplicate"]
        message = f"{event_id}: answers {statuses}; exactly one processed or ignored expected"
        assert len(applying) == 1, message
        assert applying[0] in ("processed", "ignored"), message
        outcome[event_id] = str(applying[0])
    return outcome


def _expected_trail(
    object_events: Sequence[Event], applied: set[str]
) -> list[tuple[str | None, str, str | None]]:
    """The status changes that applying ``applied`` of ``object_events`` (in created order) makes."""
    trail: list[tuple[str | None, str, str | None]] = []
    current: SubscriptionStatus = _ACTIVE
    for event in sorted(object_events, key=lambda event: event.created):
        if event.event_id in applied and event.status is not current:
            assert event.status is not None
            trail.append((current.value, event.status.value, event.event_id))
            current = event.status
    return trail


async def verify(
    session_factory: async_sessionmaker[AsyncSession],
    scenario: Scenario,
    catalog: Catalog,
    *,
    shuffled: Sequence[Sequence[Event]],
    shuffled_answers: Sequence[Answer],
    in_order: Sequence[Sequence[Event]] = (),
    in_order_answers: Sequence[Answer] = (),
) -> Figures:
    """Check every invariant of the scenario; the figures of the run.

    With ``in_order`` (the twins' timelines) every shuffled subscription is compared with its twin
    and with the last state of its timeline; without, with the last state only.
    """
    figures = Figures()
    shuffled_events = {event.event_id: event for timeline in shuffled for event in timeline}
    in_order_events = {event.event_id: event for timeline in in_order for event in timeline}
    every_event = {**shuffled_events, **in_order_events}
    figures.deliveries = len(shuffled_answers)
    figures.distinct_events = len(shuffled_events)
    figures.in_order_deliveries = len(in_order_answers)
    figures.pids = {answer.pid for answer in [*shuffled_answers, *in_order_answers] if answer.pid}
    answered = Counter(answer.status or "" for answer in shuffled_answers)
    figures.answers = dict(sorted(answered.items()))
    figures.duplicate_deliveries = answered["duplicate"]

    shuffled_outcome = _check_answers(shuffled_answers, shuffled_events)
    in_order_outcome = _check_answers(in_order_answers, in_order_events)
    assert figures.duplicate_deliveries == figures.deliveries - figures.distinct_events
    assert set(in_order_outcome.values()) <= {"processed"}, "in order, every event applies"

    object_ids = {event.object_id for event in every_event.values()}
    async with session_factory() as session:
        stored = (await session.scalars(sa.select(m.WebhookEvent))).all()
        subscriptions = (
            await session.scalars(
                sa.select(m.Subscription).where(m.Subscription.provider_subscription_id.in_(object_ids))
            )
        ).all()
        changes = (
            await session.scalars(
                sa.select(m.StatusChange).where(m.StatusChange.entity_type == "subscription")
            )
        ).all()

    # No event lost, none stored twice, each final with the reason when ignored.
    assert len(stored) == len(every_event), f"{len(stored)} stored for {len(every_event)} distinct events"
    assert {row.event_id for row in stored} == every_event.keys()
    figures.stored = dict(sorted(Counter(row.status.value for row in stored).items()))
    figures.attempts = dict(sorted(Counter(row.attempts for row in stored).items()))
    applied: set[str] = set()
    for row in stored:
        assert row.next_attempt_at is None, f"{row.event_id} is still scheduled"
        assert row.status.value == (shuffled_outcome | in_order_outcome)[row.event_id], row.event_id
        assert row.last_error is None, (row.event_id, row.last_error)
        if row.status is WebhookEventStatus.PROCESSED:
            assert row.ignored_reason is None, (row.event_id, row.ignored_reason)
            applied.add(row.event_id)
        else:
            assert row.status is WebhookEventStatus.IGNORED, (row.event_id, row.status)
            assert row.ignored_reason == "older than the state already applied", (
                row.event_id,
                row.ignored_reason,
            )

    # The final state: shuffled == its in-order twin == the last state of the timeline.
    rows = {row.provider_subscription_id: row for row in subscriptions}
    mismatches: list[str] = []
    for index, timeline in enumerate(scenario.timelines):
        seq = len(timeline) - 1
        last = SubscriptionView.expected(timeline[-1], index=index, seq=seq, plan_ids=catalog.plan_ids)
        mixed = SubscriptionView.of(rows[scenario.object_id(index)])
        twin = SubscriptionView.of(rows[scenario.object_id(index, twin=True)]) if in_order else last
        if not mixed == twin == last:
            mismatches.append(f"#{index}: shuffled {mixed} / in order {twin} / last state {last}")
        assert shuffled[index][-1].event_id in applied, "the newest event is never older than another"
    figures.objects_compared = len(scenario.timelines)
    figures.mismatches = len(mismatches)
    assert not mismatches, f"{len(mismatches)} objects differ from in-order delivery:\n" + "\n".join(
        mismatches[:5]
    )

    # One audit row per status move actually applied, never two for one event.
    figures.status_changes = len(changes)
    ids = {row.id: row.provider_subscription_id for row in subscriptions}
    trails: dict[str | None, list[tuple[str | None, str, str | None]]] = defaultdict(list)
    for change in changes:
        trails[ids.get(change.entity_id)].append(
            (change.from_status, change.to_status, change.provider_event_id)
        )
    for object_events in [*shuffled, *in_order]:
        object_id = object_events[0].object_id
        expected = _expected_trail(object_events, applied)
        assert sorted(trails[object_id], key=str) == sorted(expected, key=str), (
            f"{object_id}: audit trail {trails[object_id]}, expected {expected}"
        )
    return figures
