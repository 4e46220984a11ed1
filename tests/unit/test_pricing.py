"""Tests for exact pricing, proration and billing-interval arithmetic."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_cashier.errors import CurrencyMismatchError, UnknownCurrencyError, ValidationError
from fastapi_cashier.money import Money
from fastapi_cashier.pricing import (
    PriceLine,
    PriceSpec,
    Proration,
    Tier,
    add_interval,
    price,
    prorate,
    validate_spec,
)
from fastapi_cashier.providers.base import PlanRef, TierRef
from fastapi_cashier.statuses import BillingInterval, PricingModel

DASH = "\N{EN DASH}"
modest = settings(deadline=None)

#: 1-10 at 5.00 + 10.00 flat; 11-50 at 4.00 + 20.00 flat; 51+ at 3.00.
THREE_TIERS = (
    Tier(up_to=10, unit_amount=500, flat_amount=1000),
    Tier(up_to=50, unit_amount=400, flat_amount=2000),
    Tier(up_to=None, unit_amount=300),
)


def graduated(tiers: tuple[Tier, ...] = THREE_TIERS, currency: str = "USD") -> PriceSpec:
    return PriceSpec(PricingModel.TIERED_GRADUATED, currency, tiers=tiers)


def volume(tiers: tuple[Tier, ...] = THREE_TIERS, currency: str = "USD") -> PriceSpec:
    return PriceSpec(PricingModel.TIERED_VOLUME, currency, tiers=tiers)


def assert_consistent(spec: PriceSpec, quantity: int = 1, usage: int = 0) -> None:
    preview = price(spec, quantity=quantity, usage=usage)
    assert type(preview.total.amount) is int
    for line in preview.lines:
        assert type(line.quantity) is int
        assert type(line.unit_amount) is int
        assert type(line.amount) is int
        assert line.amount == line.quantity * line.unit_amount
    assert sum(line.amount for line in preview.lines) == preview.total.amount


# --------------------------------------------------------------------------- examples


def test_flat_is_charged_once_whatever_the_quantity() -> None:
    spec = PriceSpec(PricingModel.FLAT, "USD", unit_amount=1999)
    for quantity in (0, 1, 7):
        preview = price(spec, quantity=quantity)
        assert preview.total == Money(1999, "USD")
        assert preview.lines == (PriceLine("flat price", 1, 1999, 1999),)


def test_per_unit_multiplies_by_seats() -> None:
    spec = PriceSpec(PricingModel.PER_UNIT, "EUR", unit_amount=1500)
    preview = price(spec, quantity=3)
    assert preview.total == Money(4500, "EUR")
    assert preview.lines == (PriceLine("3 units at 15.00 EUR each", 3, 1500, 4500),)
    assert price(spec, quantity=1).lines[0].description == "1 unit at 15.00 EUR each"


def test_per_unit_with_no_seats_costs_nothing() -> None:
    preview = price(PriceSpec(PricingModel.PER_UNIT, "EUR", unit_amount=1500), quantity=0)
    assert preview.total == Money(0, "EUR")
    assert preview.lines == (PriceLine("0 units at 15.00 EUR each", 0, 1500, 0),)


def test_graduated_three_tiers_with_flat_fees() -> None:
    preview = price(graduated(), quantity=60)
    assert preview.total == Money(27_000, "USD")
    assert preview.lines == (
        PriceLine(f"units 1{DASH}10 at 5.00 USD", 10, 500, 5000),
        PriceLine(f"flat fee for units 1{DASH}10", 1, 1000, 1000),
        PriceLine(f"units 11{DASH}50 at 4.00 USD", 40, 400, 16_000),
        PriceLine(f"flat fee for units 11{DASH}50", 1, 2000, 2000),
        PriceLine(f"units 51{DASH}60 at 3.00 USD", 10, 300, 3000),
    )


@pytest.mark.parametrize(
    ("quantity", "total"),
    [
        (0, 0),
        (1, 500 + 1000),
        (10, 5000 + 1000),
        (11, 5000 + 1000 + 400 + 2000),
        (50, 5000 + 1000 + 16_000 + 2000),
        (51, 5000 + 1000 + 16_000 + 2000 + 300),
    ],
)
def test_graduated_at_tier_boundaries(quantity: int, total: int) -> None:
    assert price(graduated(), quantity=quantity).total == Money(total, "USD")
    assert_consistent(graduated(), quantity)


def test_graduated_single_unit_in_a_tier_is_named_alone() -> None:
    preview = price(graduated(), quantity=11)
    assert preview.lines[2].description == "unit 11 at 4.00 USD"


def test_graduated_open_tier_flat_fee_says_and_above() -> None:
    tiers = (Tier(up_to=5, unit_amount=100), Tier(up_to=None, unit_amount=50, flat_amount=700))
    preview = price(graduated(tiers), quantity=8)
    assert preview.total == Money(500 + 150 + 700, "USD")
    assert preview.lines[-1] == PriceLine("flat fee for units 6 and above", 1, 700, 700)


@pytest.mark.parametrize(
    ("quantity", "total", "lines"),
    [
        (1, 500 + 1000, 2),
        (10, 10 * 500 + 1000, 2),
        (11, 11 * 400 + 2000, 2),
        (50, 50 * 400 + 2000, 2),
        (51, 51 * 300, 1),
        (60, 60 * 300, 1),
    ],
)
def test_volume_prices_every_unit_at_the_reached_tier(quantity: int, total: int, lines: int) -> None:
    preview = price(volume(), quantity=quantity)
    assert preview.total == Money(total, "USD")
    assert len(preview.lines) == lines
    assert_consistent(volume(), quantity)


def test_volume_lines() -> None:
    preview = price(volume(), quantity=20)
    assert preview.lines == (
        PriceLine("20 units at 4.00 USD each", 20, 400, 8000),
        PriceLine(f"flat fee for units 11{DASH}50", 1, 2000, 2000),
    )


@pytest.mark.parametrize("spec", [graduated(), volume()], ids=["graduated", "volume"])
def test_tiered_with_no_units_reaches_no_tier(spec: PriceSpec) -> None:
    preview = price(spec, quantity=0)
    assert preview.total == Money(0, "USD")
    assert preview.lines == ()


def test_metered_per_unit_uses_usage_not_quantity() -> None:
    spec = PriceSpec(PricingModel.METERED, "USD", unit_amount=2)
    preview = price(spec, quantity=7, usage=1234)
    assert preview.total == Money(2468, "USD")
    assert preview.lines == (PriceLine("1234 units at 0.02 USD each", 1234, 2, 2468),)
    assert price(spec, quantity=7).total == Money(0, "USD")


def test_metered_graduated_over_tiers() -> None:
    spec = PriceSpec(PricingModel.METERED, "USD", tiers=THREE_TIERS)
    assert price(spec, quantity=1, usage=60).total == price(graduated(), quantity=60).total
    assert price(spec, quantity=60, usage=0).total == Money(0, "USD")


def test_free_costs_nothing() -> None:
    preview = price(PriceSpec(PricingModel.FREE, "USD"), quantity=5, usage=9)
    assert preview.total == Money(0, "USD")
    assert preview.lines == (PriceLine("free", 1, 0, 0),)


def test_jpy_zero_decimal() -> None:
    preview = price(PriceSpec(PricingModel.PER_UNIT, "JPY", unit_amount=980), quantity=3)
    assert preview.total == Money(2940, "JPY")
    assert str(preview.total) == "2940 JPY"
    assert preview.lines[0].description == "3 units at 980 JPY each"


def test_kwd_three_decimal_graduated() -> None:
    tiers = (Tier(up_to=100, unit_amount=1250, flat_amount=5), Tier(up_to=None, unit_amount=1001))
    preview = price(graduated(tiers, "KWD"), quantity=101)
    assert preview.total == Money(100 * 1250 + 5 + 1001, "KWD")
    assert str(preview.total) == "126.006 KWD"
    assert preview.lines[0].description == f"units 1{DASH}100 at 1.250 KWD"
    assert preview.lines[2].description == "unit 101 at 1.001 KWD"


def test_lowercase_currency_is_normalised() -> None:
    preview = price(PriceSpec(PricingModel.FLAT, "usd", unit_amount=100))
    assert preview.total == Money(100, "USD")


def test_amounts_beyond_float_precision_stay_exact() -> None:
    unit = 10**20 + 1  # a float would round this to 1e20
    preview = price(PriceSpec(PricingModel.PER_UNIT, "USD", unit_amount=unit), quantity=3)
    assert preview.total.amount == 300_000_000_000_000_000_003
    tiers = (Tier(up_to=1, unit_amount=unit, flat_amount=unit), Tier(up_to=None, unit_amount=1))
    assert price(graduated(tiers), quantity=3).total.amount == 2 * unit + 2


def test_string_model_and_list_tiers_are_accepted() -> None:
    spec = PriceSpec("tiered_graduated", "USD", tiers=list(THREE_TIERS))  # type: ignore[arg-type]
    assert spec.pricing_model is PricingModel.TIERED_GRADUATED
    assert spec.tiers == THREE_TIERS
    assert price(spec, quantity=60).total == Money(27_000, "USD")
    hash(spec)


def test_from_plan_ref() -> None:
    plan = PlanRef(
        id=uuid.uuid4(),
        name="Team",
        unit_amount=Money(0, "EUR"),
        interval=BillingInterval.MONTH,
        pricing_model=PricingModel.TIERED_VOLUME,
        tiers=(TierRef(up_to=10, unit_amount=500, flat_amount=100), TierRef(up_to=None, unit_amount=400)),
    )
    spec = PriceSpec.from_plan_ref(plan)
    assert spec == PriceSpec(
        PricingModel.TIERED_VOLUME,
        "EUR",
        0,
        (Tier(up_to=10, unit_amount=500, flat_amount=100), Tier(up_to=None, unit_amount=400)),
    )
    assert price(spec, quantity=4).total == Money(2100, "EUR")


def test_from_plan_ref_flat() -> None:
    plan = PlanRef(id=uuid.uuid4(), name="Pro", unit_amount=Money(2900, "USD"), interval=BillingInterval.YEAR)
    assert PriceSpec.from_plan_ref(plan) == PriceSpec(PricingModel.FLAT, "USD", 2900)


@pytest.mark.parametrize(
    "spec",
    [
        PriceSpec(PricingModel.FLAT, "USD", unit_amount=1999),
        PriceSpec(PricingModel.PER_UNIT, "JPY", unit_amount=980),
        graduated(),
        volume(),
        PriceSpec(PricingModel.METERED, "KWD", unit_amount=7),
        PriceSpec(PricingModel.METERED, "USD", tiers=THREE_TIERS),
        PriceSpec(PricingModel.FREE, "USD"),
    ],
    ids=lambda spec: spec.pricing_model.value,
)
@pytest.mark.parametrize("quantity", [0, 1, 10, 11, 49, 50, 51, 1000])
def test_lines_always_sum_to_the_total(spec: PriceSpec, quantity: int) -> None:
    assert_consistent(spec, quantity=quantity, usage=quantity)


# --------------------------------------------------------------------------- bad quantities


@pytest.mark.parametrize("name", ["quantity", "usage"])
@pytest.mark.parametrize("value", [1.0, 2.5, float("nan"), True, "3", None])
def test_non_int_quantity_or_usage_is_a_type_error(name: str, value: object) -> None:
    spec = PriceSpec(PricingModel.PER_UNIT, "USD", unit_amount=100)
    with pytest.raises(TypeError, match=name):
        price(spec, **{name: value})  # type: ignore[arg-type]


def test_float_quantity_message_explains_why() -> None:
    with pytest.raises(TypeError, match="float"):
        price(PriceSpec(PricingModel.PER_UNIT, "USD", unit_amount=100), quantity=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["quantity", "usage"])
def test_negative_quantity_or_usage_is_refused(name: str) -> None:
    spec = PriceSpec(PricingModel.METERED, "USD", unit_amount=100)
    with pytest.raises(ValidationError) as caught:
        price(spec, **{name: -1})
    assert caught.value.field == name
    assert caught.value.details["field"] == name


def test_price_validates_the_spec() -> None:
    with pytest.raises(ValidationError) as caught:
        price(PriceSpec(PricingModel.TIERED_GRADUATED, "USD"), quantity=3)
    assert caught.value.field == "tiers"


# --------------------------------------------------------------------------- properties

bounds = st.lists(st.integers(min_value=1, max_value=120), max_size=4, unique=True).map(sorted)
tier_amounts = st.integers(min_value=0, max_value=10**9)


@st.composite
def tier_tables(draw: st.DrawFn) -> tuple[Tier, ...]:
    ups: list[int | None] = [*draw(bounds), None]
    return tuple(
        Tier(
            up_to=up_to,
            unit_amount=draw(tier_amounts),
            flat_amount=draw(st.sampled_from([0, draw(tier_amounts)])),
        )
        for up_to in ups
    )


quantities = st.integers(min_value=0, max_value=400)


def tier_of(tiers: tuple[Tier, ...], unit: int) -> int:
    """The index of the tier whose range holds ``unit`` (1-based units)."""
    for index, tier in enumerate(tiers):
        if tier.up_to is None or unit <= tier.up_to:
            return index
    raise AssertionError("open last tier")


def first_unit(tiers: tuple[Tier, ...], index: int) -> int:
    previous = tiers[index - 1].up_to if index else 0
    assert previous is not None
    return previous + 1


@modest
@given(tiers=tier_tables(), a=quantities, b=quantities)
def test_graduated_total_is_monotonic(tiers: tuple[Tier, ...], a: int, b: int) -> None:
    low, high = sorted((a, b))
    spec = graduated(tiers)
    assert price(spec, quantity=low).total <= price(spec, quantity=high).total


@modest
@given(tiers=tier_tables(), quantity=quantities)
def test_graduated_equals_brute_force_per_unit_sum(tiers: tuple[Tier, ...], quantity: int) -> None:
    expected = sum(tiers[tier_of(tiers, unit)].unit_amount for unit in range(1, quantity + 1))
    expected += sum(
        tier.flat_amount for index, tier in enumerate(tiers) if first_unit(tiers, index) <= quantity
    )
    assert price(graduated(tiers), quantity=quantity).total == Money(expected, "USD")
    assert_consistent(graduated(tiers), quantity)


@modest
@given(tiers=tier_tables(), quantity=quantities)
def test_volume_equals_brute_force_reference(tiers: tuple[Tier, ...], quantity: int) -> None:
    if quantity == 0:
        expected = 0
    else:
        tier = tiers[tier_of(tiers, quantity)]
        expected = quantity * tier.unit_amount + tier.flat_amount
    assert price(volume(tiers), quantity=quantity).total == Money(expected, "USD")
    assert_consistent(volume(tiers), quantity)


@modest
@given(tiers=tier_tables(), usage=quantities, quantity=quantities)
def test_metered_tiers_graduate_usage(tiers: tuple[Tier, ...], usage: int, quantity: int) -> None:
    metered = PriceSpec(PricingModel.METERED, "USD", tiers=tiers)
    assert price(metered, quantity=quantity, usage=usage) == price(graduated(tiers), quantity=usage)


# --------------------------------------------------------------------------- validate_spec


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (PriceSpec(PricingModel.FLAT, "XYZ", 100), "currency", "Unknown currency"),
        (PriceSpec("monthly", "USD", 100), "pricing_model", "pricing_model must be one of"),  # type: ignore[arg-type]
        (PriceSpec(PricingModel.FLAT, "USD", -1), "unit_amount", "unit_amount must not be negative"),
        (PriceSpec(PricingModel.METERED, "USD", -5), "unit_amount", "unit_amount must not be negative"),
        (PriceSpec(PricingModel.FLAT, "USD", 100, THREE_TIERS), "tiers", "flat price takes no tiers"),
        (PriceSpec(PricingModel.PER_UNIT, "USD", 100, THREE_TIERS), "tiers", "per_unit price takes no tiers"),
        (PriceSpec(PricingModel.FREE, "USD", 0, THREE_TIERS), "tiers", "free price takes no tiers"),
        (PriceSpec(PricingModel.FREE, "USD", 1), "unit_amount", "free price has unit_amount 0"),
        (PriceSpec(PricingModel.TIERED_GRADUATED, "USD"), "tiers", "needs at least one tier"),
        (
            PriceSpec(PricingModel.TIERED_VOLUME, "USD"),
            "tiers",
            "tiered_volume price needs at least one tier",
        ),
        (
            PriceSpec(PricingModel.TIERED_VOLUME, "USD", 100, THREE_TIERS),
            "unit_amount",
            "unit_amount must be 0",
        ),
        (PriceSpec(PricingModel.METERED, "USD", 100, THREE_TIERS), "unit_amount", "unit_amount must be 0"),
        (
            graduated((Tier(10, 100), Tier(None, -1))),
            "tiers",
            "tiers[1].unit_amount must not be negative",
        ),
        (
            volume((Tier(10, 100, flat_amount=-3), Tier(None, 1))),
            "tiers",
            "tiers[0].flat_amount must not be negative",
        ),
        (
            graduated((Tier(10, 1), Tier(20, 1), Tier(15, 1), Tier(None, 1))),
            "tiers",
            "tiers[2].up_to must be greater than tiers[1].up_to",
        ),
        (
            graduated((Tier(10, 1), Tier(10, 1), Tier(None, 1))),
            "tiers",
            "tiers[1].up_to must be greater than tiers[0].up_to",
        ),
        (
            graduated((Tier(None, 1), Tier(None, 1))),
            "tiers",
            "tiers[0].up_to is None but only the last tier may be open",
        ),
        (
            volume((Tier(5, 1), Tier(None, 1), Tier(20, 1))),
            "tiers",
            "tiers[1].up_to is None but only the last tier may be open",
        ),
        (graduated((Tier(10, 1), Tier(20, 1))), "tiers", "tiers[1].up_to must be None"),
        (volume((Tier(7, 1),)), "tiers", "tiers[0].up_to must be None"),
        (graduated((Tier(0, 1), Tier(None, 1))), "tiers", "tiers[0].up_to must be at least 1"),
        (
            PriceSpec(PricingModel.METERED, "USD", 0, (Tier(5, 1), Tier(3, 1), Tier(None, 1))),
            "tiers",
            "tiers[1].up_to must be greater than tiers[0].up_to",
        ),
    ],
)
def test_validate_spec_names_the_field(spec: PriceSpec, field: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        validate_spec(spec)
    assert caught.value.field == field
    assert caught.value.details["field"] == field
    with pytest.raises(ValidationError):
        spec.validate()


def test_unknown_currency_is_an_unknown_currency_error() -> None:
    with pytest.raises(UnknownCurrencyError):
        PriceSpec(PricingModel.FREE, "ABC").validate()


def test_tier_errors_carry_the_index() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_spec(graduated((Tier(10, 1), Tier(20, 1), Tier(15, 1), Tier(None, 1))))
    assert caught.value.details["index"] == 2


@pytest.mark.parametrize(
    "spec",
    [
        PriceSpec(PricingModel.FLAT, "USD", 10.0),  # type: ignore[arg-type]
        PriceSpec(PricingModel.FLAT, "USD", True),
        graduated((Tier(10, 1.5), Tier(None, 1))),  # type: ignore[arg-type]
        graduated((Tier(10.0, 1), Tier(None, 1))),  # type: ignore[arg-type]
        graduated((Tier(10, 1), (None, 1, 0))),  # type: ignore[arg-type]
    ],
)
def test_non_int_amounts_and_foreign_tiers_are_type_errors(spec: PriceSpec) -> None:
    with pytest.raises(TypeError):
        validate_spec(spec)


@pytest.mark.parametrize(
    "spec",
    [
        PriceSpec(PricingModel.FLAT, "USD", 0),
        PriceSpec(PricingModel.FREE, "EUR"),
        PriceSpec(PricingModel.METERED, "USD", 3),
        PriceSpec(PricingModel.METERED, "USD", 0, THREE_TIERS),
        graduated((Tier(None, 100, flat_amount=5),)),
        volume(THREE_TIERS),
    ],
)
def test_valid_specs_pass(spec: PriceSpec) -> None:
    validate_spec(spec)
    spec.validate()


# --------------------------------------------------------------------------- proration

START = datetime(2024, 3, 1, tzinfo=UTC)
END = START + timedelta(days=30)


def test_prorate_midway_example() -> None:
    result = prorate(
        old=Money(3000, "USD"),
        new=Money(6000, "USD"),
        period_start=START,
        period_end=END,
        at=START + timedelta(days=10),
    )
    assert result == Proration(
        credit=Money(-2000, "USD"),
        charge=Money(4000, "USD"),
        net=Money(2000, "USD"),
        remaining_seconds=20 * 86_400,
        period_seconds=30 * 86_400,
    )
    assert result.used_seconds == 10 * 86_400


def test_prorate_downgrade_nets_a_credit() -> None:
    result = prorate(
        old=Money(1000, "USD"),
        new=Money(100, "USD"),
        period_start=START,
        period_end=END,
        at=START + timedelta(days=15),
    )
    assert result.net == Money(-450, "USD")


def test_prorate_uneven_split_loses_no_minor_unit() -> None:
    old = Money(1000, "USD")
    at = START + timedelta(days=10)  # one third used, two thirds remaining
    result = prorate(old=old, new=Money(1, "USD"), period_start=START, period_end=END, at=at)
    assert result.credit == Money(-667, "USD")
    assert old.allocate([result.used_seconds, result.remaining_seconds])[0] - result.credit == old
    assert result.charge == Money(1, "USD")


@pytest.mark.parametrize("at", [START, START - timedelta(days=3)])
def test_prorate_at_or_before_start_is_full(at: datetime) -> None:
    result = prorate(
        old=Money(3000, "EUR"), new=Money(5000, "EUR"), period_start=START, period_end=END, at=at
    )
    assert result.credit == Money(-3000, "EUR")
    assert result.charge == Money(5000, "EUR")
    assert result.net == Money(2000, "EUR")
    assert result.remaining_seconds == result.period_seconds


@pytest.mark.parametrize("at", [END, END + timedelta(seconds=1), END + timedelta(days=400)])
def test_prorate_at_or_after_end_is_zero(at: datetime) -> None:
    result = prorate(
        old=Money(3000, "EUR"), new=Money(5000, "EUR"), period_start=START, period_end=END, at=at
    )
    assert result.credit.is_zero
    assert result.charge.is_zero
    assert result.net.is_zero
    assert result.remaining_seconds == 0


def test_prorate_compares_instants_across_time_zones() -> None:
    plus_two = timezone(timedelta(hours=2))
    at = (START + timedelta(days=15)).astimezone(plus_two)
    result = prorate(
        old=Money(3000, "USD"), new=Money(3000, "USD"), period_start=START, period_end=END, at=at
    )
    assert result.remaining_seconds == 15 * 86_400
    assert result.credit == Money(-1500, "USD")


@pytest.mark.parametrize("naive", ["period_start", "period_end", "at"])
def test_prorate_refuses_naive_datetimes(naive: str) -> None:
    moments = {"period_start": START, "period_end": END, "at": START + timedelta(days=1)}
    moments[naive] = moments[naive].replace(tzinfo=None)
    with pytest.raises(ValueError, match=f"{naive} must be timezone-aware"):
        prorate(old=Money(1, "USD"), new=Money(1, "USD"), **moments)


def test_prorate_refuses_mixed_currencies() -> None:
    with pytest.raises(CurrencyMismatchError):
        prorate(old=Money(1, "USD"), new=Money(1, "EUR"), period_start=START, period_end=END, at=START)


@pytest.mark.parametrize("name", ["old", "new"])
def test_prorate_refuses_negative_prices(name: str) -> None:
    amounts = {"old": Money(100, "USD"), "new": Money(100, "USD")}
    amounts[name] = Money(-1, "USD")
    with pytest.raises(ValidationError) as caught:
        prorate(**amounts, period_start=START, period_end=END, at=START)
    assert caught.value.field == name


@pytest.mark.parametrize("end", [START, START - timedelta(days=1), START + timedelta(microseconds=999_999)])
def test_prorate_refuses_empty_or_reversed_periods(end: datetime) -> None:
    with pytest.raises(ValueError, match="at least one second"):
        prorate(old=Money(1, "USD"), new=Money(1, "USD"), period_start=START, period_end=end, at=START)


def test_prorate_refuses_non_money() -> None:
    with pytest.raises(TypeError, match="old must be Money"):
        prorate(old=100, new=Money(1, "USD"), period_start=START, period_end=END, at=START)  # type: ignore[arg-type]


prices = st.integers(min_value=0, max_value=10**15)


@modest
@given(
    old=prices,
    new=prices,
    period=st.integers(min_value=1, max_value=400 * 86_400),
    offset=st.integers(min_value=-86_400, max_value=401 * 86_400),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_prorate_split_is_exact(old: int, new: int, period: int, offset: int, currency: str) -> None:
    old_money, new_money = Money(old, currency), Money(new, currency)
    end = START + timedelta(seconds=period)
    result = prorate(
        old=old_money, new=new_money, period_start=START, period_end=end, at=START + timedelta(seconds=offset)
    )
    assert result.period_seconds == period
    assert 0 <= result.remaining_seconds <= period
    assert result.remaining_seconds == min(max(period - offset, 0), period)
    assert result.credit + result.charge == result.net
    assert result.credit.amount <= 0 <= result.charge.amount
    assert result.charge <= new_money
    used_old, unused_old = old_money.allocate([result.used_seconds, result.remaining_seconds])
    assert -result.credit == unused_old
    assert -result.credit + used_old == old_money
    # each part is within one minor unit of its exact share
    assert abs(-result.credit.amount * period - old * result.remaining_seconds) < period
    assert abs(result.charge.amount * period - new * result.remaining_seconds) < period


# --------------------------------------------------------------------------- add_interval


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        (datetime(2023, 1, 31), 1, datetime(2023, 2, 28)),
        (datetime(2024, 1, 31), 1, datetime(2024, 2, 29)),
        (datetime(2024, 1, 31), 2, datetime(2024, 3, 31)),
        (datetime(2024, 3, 31), 1, datetime(2024, 4, 30)),
        (datetime(2023, 11, 30), 3, datetime(2024, 2, 29)),
        (datetime(2024, 12, 15), 1, datetime(2025, 1, 15)),
        (datetime(2024, 1, 15), 25, datetime(2026, 2, 15)),
        (datetime(2024, 3, 31), -1, datetime(2024, 2, 29)),
        (datetime(2024, 1, 15), -13, datetime(2022, 12, 15)),
        (datetime(2024, 5, 31), 0, datetime(2024, 5, 31)),
    ],
)
def test_add_months_clamps_to_month_end(start: datetime, count: int, expected: datetime) -> None:
    assert add_interval(start, BillingInterval.MONTH, count) == expected


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        (datetime(2024, 2, 29), 1, datetime(2025, 2, 28)),
        (datetime(2024, 2, 29), 4, datetime(2028, 2, 29)),
        (datetime(2023, 2, 28), 1, datetime(2024, 2, 28)),
        (datetime(2024, 7, 4), 3, datetime(2027, 7, 4)),
    ],
)
def test_add_years_handles_leap_days(start: datetime, count: int, expected: datetime) -> None:
    assert add_interval(start, BillingInterval.YEAR, count) == expected


def test_add_weeks_and_days() -> None:
    start = datetime(2024, 2, 26, 9, 30, tzinfo=UTC)
    assert add_interval(start, BillingInterval.WEEK) == datetime(2024, 3, 4, 9, 30, tzinfo=UTC)
    assert add_interval(start, BillingInterval.WEEK, 3) == datetime(2024, 3, 18, 9, 30, tzinfo=UTC)
    assert add_interval(start, BillingInterval.DAY) == datetime(2024, 2, 27, 9, 30, tzinfo=UTC)
    assert add_interval(start, BillingInterval.DAY, 4) == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def test_add_interval_keeps_time_and_zone() -> None:
    zone = timezone(timedelta(hours=-5))
    start = datetime(2024, 1, 31, 23, 59, 58, 123, tzinfo=zone)
    assert add_interval(start, BillingInterval.MONTH) == datetime(2024, 2, 29, 23, 59, 58, 123, tzinfo=zone)
    assert add_interval(start, BillingInterval.MONTH).tzinfo is zone


def test_add_interval_accepts_the_enum_value() -> None:
    assert add_interval(datetime(2024, 1, 31), "month") == datetime(2024, 2, 29)  # type: ignore[arg-type]


def test_add_interval_refuses_one_time_and_unknown() -> None:
    with pytest.raises(ValueError, match="one_time"):
        add_interval(datetime(2024, 1, 1, tzinfo=UTC), BillingInterval.ONE_TIME)
    with pytest.raises(ValueError, match="fortnight"):
        add_interval(datetime(2024, 1, 1, tzinfo=UTC), "fortnight")  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [1.0, True, "2"])
def test_add_interval_refuses_non_int_count(count: object) -> None:
    with pytest.raises(TypeError, match="count"):
        add_interval(datetime(2024, 1, 1), BillingInterval.MONTH, count)  # type: ignore[arg-type]


def test_add_interval_out_of_range() -> None:
    with pytest.raises(OverflowError):
        add_interval(datetime(9999, 12, 1), BillingInterval.MONTH)
    with pytest.raises(OverflowError):
        add_interval(datetime(1, 1, 1), BillingInterval.YEAR, -1)


@modest
@given(
    start=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)),
    count=st.integers(min_value=-120, max_value=120),
)
def test_add_months_property(start: datetime, count: int) -> None:
    result = add_interval(start, BillingInterval.MONTH, count)
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == count
    assert result.day == start.day or (
        result.day < start.day and add_interval(result, BillingInterval.DAY).day == 1
    )
    assert result.time() == start.time()
    assert add_interval(start, BillingInterval.YEAR, count) == add_interval(
        start, BillingInterval.MONTH, 12 * count
    )
