"""Exact pricing: what a plan costs for a quantity or a usage.

Everything here is pure and works in integer minor units: no database, no FastAPI, no ``float``.
:func:`price` turns a :class:`PriceSpec` (one of the :class:`~fastapi_cashier.statuses.PricingModel`
models) into a :class:`PricePreview` whose lines add up to its total.

Example::

    >>> spec = PriceSpec(
    ...     PricingModel.TIERED_GRADUATED,
    ...     "USD",
    ...     tiers=(Tier(up_to=10, unit_amount=500), Tier(up_to=None, unit_amount=400)),
    ... )
    >>> preview = price(spec, quantity=12)
    >>> str(preview.total)
    '58.00 USD'
    >>> [line.description for line in preview.lines]
    ['units 1\u201310 at 5.00 USD', 'units 11\u201312 at 4.00 USD']
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from ..currencies import normalize_currency
from ..errors import ValidationError
from ..money import Money
from ..statuses import PricingModel
from .periods import _whole_number

__all__ = [
    "MAX_QUANTITY",
    "MAX_STORABLE_AMOUNT",
    "PriceLine",
    "PricePreview",
    "PriceSpec",
    "PricedPlan",
    "Tier",
    "price",
    "storable_period_total",
    "validate_spec",
]

#: The largest amount the database stores (a signed 64-bit ``BIGINT``).
MAX_STORABLE_AMOUNT: Final = 2**63 - 1
#: The most units or seats a plan may be bought with.
MAX_QUANTITY: Final = 100_000

_UNTIERED: Final = frozenset({PricingModel.FLAT, PricingModel.PER_UNIT, PricingModel.FREE})
_TIERED: Final = frozenset({PricingModel.TIERED_GRADUATED, PricingModel.TIERED_VOLUME})
_EN_DASH: Final = "\N{EN DASH}"


# --------------------------------------------------------------------------- the price spec


class _TierLike(Protocol):
    @property
    def up_to(self) -> int | None: ...
    @property
    def unit_amount(self) -> int: ...
    @property
    def flat_amount(self) -> int: ...


class PricedPlan(Protocol):
    """What :meth:`PriceSpec.from_plan` reads of a plan (a provider's ``PlanRef`` is one)."""

    @property
    def pricing_model(self) -> PricingModel: ...
    @property
    def unit_amount(self) -> Money: ...
    @property
    def tiers(self) -> Sequence[_TierLike]: ...


@dataclass(frozen=True, slots=True)
class Tier:
    """One price tier: units up to ``up_to`` inclusive, ``None`` for the last, open tier.

    Attributes:
        up_to: The last unit this tier covers (at least 1), or ``None`` for no upper bound.
        unit_amount: The price of each unit in the tier, in minor units.
        flat_amount: A fee added once when the tier is reached, in minor units.
    """

    up_to: int | None
    unit_amount: int
    flat_amount: int = 0


@dataclass(frozen=True, slots=True)
class PriceSpec:
    """How a plan is priced: a pricing model, a currency and the amounts the model needs.

    Construction does not check the values; :meth:`validate` (or :func:`validate_spec`) does, and
    :func:`price` validates before computing. ``tiers`` given as a list is stored as a tuple.

    Attributes:
        pricing_model: One of :class:`~fastapi_cashier.statuses.PricingModel` (its string value is
            accepted and converted).
        currency: An ISO 4217 code.
        unit_amount: The price in minor units: the whole price for ``flat``, the price per unit for
            ``per_unit`` and untiered ``metered``; 0 for ``free`` and tiered models.
        tiers: For ``tiered_graduated``, ``tiered_volume`` and (optionally) ``metered``: ascending
            ``up_to``, every tier bounded but the last.
    """

    pricing_model: PricingModel
    currency: str
    unit_amount: int = 0
    tiers: tuple[Tier, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.tiers, tuple) and isinstance(self.tiers, Sequence):
            object.__setattr__(self, "tiers", tuple(self.tiers))
        model = self.pricing_model
        if isinstance(model, str) and not isinstance(model, PricingModel):
            with contextlib.suppress(ValueError):  # validate() reports an unknown model
                object.__setattr__(self, "pricing_model", PricingModel(model))

    @classmethod
    def from_plan_ref(cls, plan: PricedPlan) -> PriceSpec:
        """Build the spec of a provider-facing plan.

        Args:
            plan: The plan; its ``unit_amount`` carries the currency.

        Returns:
            The plan's pricing model, currency, unit amount and tiers.
        """
        return cls(
            pricing_model=plan.pricing_model,
            currency=plan.unit_amount.currency,
            unit_amount=plan.unit_amount.amount,
            tiers=tuple(Tier(tier.up_to, tier.unit_amount, tier.flat_amount) for tier in plan.tiers),
        )

    def validate(self) -> None:
        """Check that the spec describes a price; see :func:`validate_spec`."""
        validate_spec(self)


def validate_spec(spec: PriceSpec, *, noun: str = "price", null: str = "None") -> None:
    """Check that a spec describes a price, naming the offending field.

    Rules: the currency is a known ISO 4217 code; amounts are non-negative; ``flat``, ``per_unit``
    and ``free`` take no tiers; ``free`` has ``unit_amount`` 0; the tiered models need at least one
    tier; ``metered`` is either per unit (no tiers) or graduated over tiers; where tiers are given
    ``unit_amount`` is 0, ``up_to`` values are at least 1 and strictly ascending, and only the last
    tier is open (``up_to=None``).

    Args:
        spec: The spec to check.
        noun: What the messages call the thing priced (``"a free price has unit_amount 0"``);
            the catalog, which checks plans with this function, says ``"plan"``.
        null: How the messages write an open ``up_to``; the catalog, whose input is JSON, says
            ``"null"``.

    Raises:
        ValidationError: a rule is broken; ``field`` is ``"pricing_model"``, ``"currency"``,
            ``"unit_amount"`` or ``"tiers"``, and a tier's message names its index
            (``"tiers[2].up_to must be greater than tiers[1].up_to"``), as does ``details["index"]``.
        TypeError: an amount or bound is a ``float``, ``bool`` or other non-int, or a tier is
            not a :class:`Tier`.
    """
    model = spec.pricing_model
    if not isinstance(model, PricingModel):
        allowed = ", ".join(member.value for member in PricingModel)
        raise ValidationError(f"pricing_model must be one of: {allowed}", field="pricing_model")
    normalize_currency(spec.currency)  # UnknownCurrencyError names field "currency"
    unit_amount = _whole_number(spec.unit_amount, "unit_amount")
    if unit_amount < 0:
        raise ValidationError("unit_amount must not be negative", field="unit_amount")
    if model in _UNTIERED and spec.tiers:
        raise ValidationError(f"a {model.value} {noun} takes no tiers", field="tiers")
    if model is PricingModel.FREE and unit_amount != 0:
        raise ValidationError(f"a free {noun} has unit_amount 0", field="unit_amount")
    if model in _TIERED and not spec.tiers:
        raise ValidationError(f"a {model.value} {noun} needs at least one tier", field="tiers")
    if spec.tiers:
        _validate_tiers(spec.tiers, null)
        if unit_amount != 0:
            raise ValidationError(
                f"a {model.value} {noun} with tiers is priced by its tiers; unit_amount must be 0",
                field="unit_amount",
            )


def _validate_tiers(tiers: tuple[Tier, ...], null: str) -> None:
    previous: int | None = None
    last = len(tiers) - 1
    for index, tier in enumerate(tiers):
        if not isinstance(tier, Tier):
            raise TypeError(f"tiers[{index}] must be a Tier, got {type(tier).__name__}")
        for name in ("unit_amount", "flat_amount"):
            if _whole_number(getattr(tier, name), f"tiers[{index}].{name}") < 0:
                raise ValidationError(
                    f"tiers[{index}].{name} must not be negative", field="tiers", details={"index": index}
                )
        if tier.up_to is None:
            if index != last:
                raise ValidationError(
                    f"tiers[{index}].up_to is {null} but only the last tier may be open",
                    field="tiers",
                    details={"index": index},
                )
            continue
        up_to = _whole_number(tier.up_to, f"tiers[{index}].up_to")
        if up_to < 1:
            raise ValidationError(
                f"tiers[{index}].up_to must be at least 1", field="tiers", details={"index": index}
            )
        if previous is not None and up_to <= previous:
            raise ValidationError(
                f"tiers[{index}].up_to must be greater than tiers[{index - 1}].up_to",
                field="tiers",
                details={"index": index},
            )
        if index == last:
            raise ValidationError(
                f"tiers[{index}].up_to must be {null}: the last tier is open, so every quantity has a price",
                field="tiers",
                details={"index": index},
            )
        previous = up_to


# --------------------------------------------------------------------------- pricing


@dataclass(frozen=True, slots=True)
class PriceLine:
    """One step of a price computation; ``amount == quantity * unit_amount`` on every line.

    Attributes:
        description: What the line is, for people (``"units 1\u201310 at 5.00 USD"``).
        quantity: Units priced on this line (1 for a flat fee).
        unit_amount: The price of each unit, in minor units.
        amount: ``quantity * unit_amount``, in minor units.
    """

    description: str
    quantity: int
    unit_amount: int
    amount: int


@dataclass(frozen=True, slots=True)
class PricePreview:
    """The price of a spec for a quantity or usage: the total and the lines that add up to it."""

    total: Money
    lines: tuple[PriceLine, ...]


def price(spec: PriceSpec, *, quantity: int = 1, usage: int = 0) -> PricePreview:
    """Compute the exact price of one billing period.

    * ``flat``: ``unit_amount`` once, whatever the quantity.
    * ``per_unit``: ``unit_amount * quantity`` (seats; 0 seats cost 0).
    * ``tiered_graduated``: each unit at the price of the tier it falls in, plus the
      ``flat_amount`` of every tier reached.
    * ``tiered_volume``: every unit at the price of the tier the whole quantity falls in, plus
      that tier's ``flat_amount``.
    * ``metered``: ``usage * unit_amount``, or ``usage`` graduated over the tiers when the spec
      has tiers; ``quantity`` is not used.
    * ``free``: 0.

    A tiered price for 0 units reaches no tier and costs 0, with no lines. A tier's flat fee is a
    line of its own (quantity 1), so every line has ``amount == quantity * unit_amount``.

    Args:
        spec: The price; it is validated first.
        quantity: Units or seats, an ``int`` of at least 0.
        usage: Metered units used in the period, an ``int`` of at least 0.

    Returns:
        The total in the spec's currency and the lines that add up to it.

    Raises:
        TypeError: ``quantity`` or ``usage`` is a ``float``, ``bool`` or other non-int.
        ValidationError: a negative ``quantity`` or ``usage`` (``field`` names it), or a spec
            :func:`validate_spec` refuses.
    """
    quantity = _count(quantity, "quantity")
    usage = _count(usage, "usage")
    validate_spec(spec)
    currency = normalize_currency(spec.currency)
    model = spec.pricing_model
    lines: list[PriceLine]
    if model is PricingModel.FLAT:
        lines = [PriceLine("flat price", 1, spec.unit_amount, spec.unit_amount)]
    elif model is PricingModel.PER_UNIT:
        lines = [_per_unit_line(quantity, spec.unit_amount, currency)]
    elif model is PricingModel.TIERED_GRADUATED:
        lines = _graduated(spec.tiers, quantity, currency)
    elif model is PricingModel.TIERED_VOLUME:
        lines = _volume(spec.tiers, quantity, currency)
    elif model is PricingModel.METERED:
        if spec.tiers:
            lines = _graduated(spec.tiers, usage, currency)
        else:
            lines = [_per_unit_line(usage, spec.unit_amount, currency)]
    else:
        lines = [PriceLine("free", 1, 0, 0)]
    total = Money(sum(line.amount for line in lines), currency)
    return PricePreview(total=total, lines=tuple(lines))


def storable_period_total(spec: PriceSpec, *, quantity: int, field: str, usage: int = 0) -> Money:
    """The period total at ``quantity`` (and metered ``usage``), refused under ``field`` when the
    database cannot store it.

    :func:`price` itself is exact at any size; this is the check for totals about to be stored.

    Raises:
        ValidationError: the total (or the usage count) exceeds :data:`MAX_STORABLE_AMOUNT`;
            ``field`` names the input that made it (``"quantity"``, ``"plan_id"`` for a plan
            change, ``"unit_amount"`` for a plan, ``"quantity"`` of a usage record), or
            :func:`price` refuses the spec.
    """
    if usage > MAX_STORABLE_AMOUNT:
        raise ValidationError(
            f"the period's usage of {usage} units exceeds the largest storable count ({MAX_STORABLE_AMOUNT})",
            field=field,
            details={"usage": str(usage), "maximum": str(MAX_STORABLE_AMOUNT)},
        )
    total = price(spec, quantity=quantity, usage=usage).total
    if total.amount > MAX_STORABLE_AMOUNT:
        raise ValidationError(
            f"the period total of {total.amount} minor units exceeds the largest storable amount "
            f"({MAX_STORABLE_AMOUNT})",
            field=field,
            details={"total": str(total.amount), "maximum": str(MAX_STORABLE_AMOUNT)},
        )
    return total


def _count(value: object, field: str) -> int:
    number = _whole_number(value, field)
    if number < 0:
        raise ValidationError(f"{field} must not be negative, got {number}", field=field)
    return number


def _at(unit_amount: int, currency: str) -> str:
    return Money(unit_amount, currency).format()


def _per_unit_line(units: int, unit_amount: int, currency: str) -> PriceLine:
    noun = "unit" if units == 1 else "units"
    return PriceLine(
        f"{units} {noun} at {_at(unit_amount, currency)} each", units, unit_amount, units * unit_amount
    )


def _span(first: int, last: int | None) -> str:
    if last is None:
        return f"units {first} and above"
    if first == last:
        return f"unit {first}"
    return f"units {first}{_EN_DASH}{last}"


def _flat_fee_line(tier: Tier, first: int) -> PriceLine:
    return PriceLine(f"flat fee for {_span(first, tier.up_to)}", 1, tier.flat_amount, tier.flat_amount)


def _graduated(tiers: Sequence[Tier], units: int, currency: str) -> list[PriceLine]:
    lines: list[PriceLine] = []
    priced = 0  # units already priced by earlier tiers
    for tier in tiers:
        if priced >= units:
            break
        upper = units if tier.up_to is None else min(units, tier.up_to)
        count = upper - priced
        description = f"{_span(priced + 1, upper)} at {_at(tier.unit_amount, currency)}"
        lines.append(PriceLine(description, count, tier.unit_amount, count * tier.unit_amount))
        if tier.flat_amount:
            lines.append(_flat_fee_line(tier, priced + 1))
        priced = upper
    return lines


def _volume(tiers: Sequence[Tier], units: int, currency: str) -> list[PriceLine]:
    if units == 0:
        return []
    first = 1
    for tier in tiers:
        if tier.up_to is None or units <= tier.up_to:
            lines = [_per_unit_line(units, tier.unit_amount, currency)]
            if tier.flat_amount:
                lines.append(_flat_fee_line(tier, first))
            return lines
        first = tier.up_to + 1
    raise AssertionError("a validated spec has an open last tier")  # pragma: no cover
