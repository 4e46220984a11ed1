"""Tests for the Money value type."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import IntEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_cashier.currencies import CURRENCY_EXPONENTS
from fastapi_cashier.errors import (
    CurrencyMismatchError,
    ErrorCode,
    UnknownCurrencyError,
    ValidationError,
)
from fastapi_cashier.money import Money

KNOWN_CODES = sorted(CURRENCY_EXPONENTS)

currencies = st.sampled_from(KNOWN_CODES)
amounts = st.integers(min_value=-(10**15), max_value=10**15)
ratio_lists = st.lists(st.integers(min_value=0, max_value=1_000), min_size=1, max_size=12).filter(
    lambda ratios: sum(ratios) > 0
)
property_settings = settings(database=None, deadline=None)


def money(currency: str = "USD") -> st.SearchStrategy[Money]:
    return st.builds(Money, amounts, st.just(currency))


# -- construction ------------------------------------------------------------------------------


def test_fields_and_normalisation() -> None:
    price = Money(1050, " usd ")
    assert price.amount == 1050
    assert price.currency == "USD"
    assert price == Money(1050, "USD")


def test_is_frozen_and_slotted() -> None:
    price = Money(1, "USD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        price.amount = 2  # type: ignore[misc]
    assert not hasattr(price, "__dict__")


def test_float_amount_is_refused_with_guidance() -> None:
    with pytest.raises(TypeError) as info:
        Money(10.5, "USD")  # type: ignore[arg-type]
    message = str(info.value)
    assert "float" in message
    assert "cannot represent money exactly" in message
    assert "Money.from_decimal" in message


@pytest.mark.parametrize("amount", [Decimal("10.50"), "1050", None, True, False, 1j])
def test_non_int_amounts_are_refused(amount: object) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        Money(amount, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [Decimal("10.50"), "1050"])
def test_decimal_and_str_amounts_point_to_from_decimal(amount: object) -> None:
    with pytest.raises(TypeError, match=r"from_decimal"):
        Money(amount, "USD")  # type: ignore[arg-type]


def test_int_subclass_amount_is_stored_as_plain_int() -> None:
    class Cents(IntEnum):
        TEN = 10

    price = Money(Cents.TEN, "USD")
    assert type(price.amount) is int
    assert price == Money(10, "USD")


@pytest.mark.parametrize("currency", ["ABC", "US", "", "XAU", 840, None])
def test_unknown_currency_is_refused(currency: object) -> None:
    with pytest.raises(UnknownCurrencyError, match="ISO 4217"):
        Money(1, currency)  # type: ignore[arg-type]


def test_zero() -> None:
    assert Money.zero("eur") == Money(0, "EUR")
    assert Money.zero("EUR").is_zero
    assert not Money.zero("EUR")


def test_hashable_and_value_equality() -> None:
    assert len({Money(1, "USD"), Money(1, "usd"), Money(1, "EUR"), Money(2, "USD")}) == 3
    assert Money(100, "USD") != Money(100, "EUR")
    assert Money(100, "USD") != 100


def test_pickle_and_copy_round_trip() -> None:
    price = Money(-1234, "KWD")
    assert pickle.loads(pickle.dumps(price)) == price  # noqa: S301 - our own bytes
    assert copy.deepcopy(price) == price


# -- decimal conversion ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "amount"),
    [
        (Decimal("10.50"), "USD", 1050),
        ("10.5", "USD", 1050),
        (" 10.50 ", "USD", 1050),
        (10, "USD", 1000),
        ("1050", "JPY", 1050),
        ("1050.000", "JPY", 1050),
        ("1.234", "KWD", 1234),
        ("-1.234", "BHD", -1234),
        ("0.0001", "CLF", 1),
        ("1E+3", "USD", 100_000),
        ("-0", "USD", 0),
        ("0E-50", "USD", 0),
    ],
)
def test_from_decimal_exact(value: Decimal | int | str, currency: str, amount: int) -> None:
    assert Money.from_decimal(value, currency) == Money(amount, currency)


@pytest.mark.parametrize(
    ("value", "currency"),
    [("10.505", "USD"), ("1.5", "JPY"), ("0.0001", "KWD"), ("0.00001", "CLF"), ("1E-999999999", "USD")],
)
def test_from_decimal_refuses_excess_precision(value: str, currency: str) -> None:
    with pytest.raises(ValidationError, match="not representable exactly") as info:
        Money.from_decimal(value, currency)
    assert info.value.details["field"] == "amount"
    assert info.value.code is ErrorCode.VALIDATION_ERROR
    assert currency in str(info.value)


@pytest.mark.parametrize(
    ("value", "currency", "rounding", "amount"),
    [
        ("10.505", "USD", ROUND_HALF_EVEN, 1050),
        ("10.515", "USD", ROUND_HALF_EVEN, 1052),
        ("10.505", "USD", ROUND_HALF_UP, 1051),
        ("-10.505", "USD", ROUND_HALF_UP, -1051),
        ("10.509", "USD", ROUND_DOWN, 1050),
        ("2.5", "JPY", ROUND_HALF_EVEN, 2),
        ("1.00049", "KWD", ROUND_HALF_UP, 1000),
        ("1E-999999999", "USD", ROUND_HALF_UP, 0),
        ("10.50", "USD", ROUND_HALF_UP, 1050),
    ],
)
def test_from_decimal_rounds_when_asked(value: str, currency: str, rounding: str, amount: int) -> None:
    assert Money.from_decimal(value, currency, rounding=rounding) == Money(amount, currency)


def test_from_decimal_refuses_unknown_rounding_mode() -> None:
    with pytest.raises(ValueError, match="rounding mode"):
        Money.from_decimal("1", "USD", rounding="ROUND_SIDEWAYS")


@pytest.mark.parametrize("value", [10.5, 0.1, float("nan")])
def test_from_decimal_refuses_floats(value: float) -> None:
    with pytest.raises(TypeError, match="cannot represent money exactly"):
        Money.from_decimal(value, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, None, b"1", [1]])
def test_from_decimal_refuses_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        Money.from_decimal(value, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["abc", "", "1,50", "10.50 USD", "NaN", "sNaN", "Infinity", "-inf", Decimal("NaN")]
)
def test_from_decimal_refuses_non_numbers(value: str | Decimal) -> None:
    with pytest.raises(ValidationError) as info:
        Money.from_decimal(value, "USD")
    assert info.value.details["field"] == "amount"


@pytest.mark.parametrize("value", ["1E+999999999", "9" * 100, "0." + "1" * 100])
def test_from_decimal_refuses_absurdly_long_numbers(value: str) -> None:
    with pytest.raises(ValidationError, match="too many digits"):
        Money.from_decimal(value, "USD", rounding=ROUND_HALF_EVEN)


def test_from_decimal_refuses_unknown_currency() -> None:
    with pytest.raises(UnknownCurrencyError):
        Money.from_decimal("1", "ABC")


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (Money(1050, "USD"), "10.50"),
        (Money(1050, "JPY"), "1050"),
        (Money(5, "USD"), "0.05"),
        (Money(-5, "KWD"), "-0.005"),
        (Money(0, "EUR"), "0.00"),
        (Money(1, "CLF"), "0.0001"),
    ],
)
def test_to_decimal_is_scaled_to_the_exponent(price: Money, text: str) -> None:
    result = price.to_decimal()
    assert result == Decimal(text)
    assert str(result) == text
    assert result.as_tuple().exponent == -price.exponent


def test_to_decimal_is_exact_beyond_default_context_precision() -> None:
    text = "1" + "0" * 38 + ".01"
    result = Money(10**40 + 1, "USD").to_decimal()
    assert result == Decimal(text)
    assert str(result) == text
    assert Money.from_decimal(text, "USD") == Money(10**40 + 1, "USD")


@property_settings
@given(currency=currencies, amount=amounts)
def test_money_to_decimal_to_money_round_trips(currency: str, amount: int) -> None:
    original = Money(amount, currency)
    assert Money.from_decimal(original.to_decimal(), currency) == original
    assert Money.from_decimal(str(original.to_decimal()), currency) == original


@property_settings
@given(currency=currencies, data=st.data())
def test_decimal_to_money_to_decimal_round_trips(currency: str, data: st.DataObject) -> None:
    places = CURRENCY_EXPONENTS[currency]
    value = data.draw(
        st.decimals(
            min_value=-(10**12), max_value=10**12, places=places, allow_nan=False, allow_infinity=False
        )
    )
    assert Money.from_decimal(value, currency).to_decimal() == value


# -- formatting --------------------------------------------------------------------------------


def test_str_repr_and_format() -> None:
    assert str(Money(1050, "USD")) == "10.50 USD"
    assert Money(1050, "USD").format() == "10.50 USD"
    assert str(Money(-3000, "KWD")) == "-3.000 KWD"
    assert str(Money(1050, "JPY")) == "1050 JPY"
    assert repr(Money(1050, "USD")) == "Money(1050, 'USD')"
    assert eval(repr(Money(-7, "EUR"))) == Money(-7, "EUR")  # noqa: S307 - repr round trip


# -- predicates --------------------------------------------------------------------------------


def test_predicates_and_bool() -> None:
    assert Money(1, "USD").is_positive
    assert not Money(1, "USD").is_negative
    assert Money(-1, "USD").is_negative
    assert Money(0, "USD").is_zero
    assert not Money(0, "USD").is_positive
    assert bool(Money(-1, "USD"))
    assert not bool(Money(0, "USD"))


def test_exponent_property() -> None:
    assert Money(1, "JPY").exponent == 0
    assert Money(1, "USD").exponent == 2
    assert Money(1, "KWD").exponent == 3


# -- arithmetic --------------------------------------------------------------------------------


def test_addition_subtraction_negation_abs() -> None:
    assert Money(150, "USD") + Money(250, "USD") == Money(400, "USD")
    assert Money(150, "USD") - Money(250, "USD") == Money(-100, "USD")
    assert -Money(150, "USD") == Money(-150, "USD")
    assert +Money(150, "USD") == Money(150, "USD")
    assert abs(Money(-150, "USD")) == Money(150, "USD")
    assert sum([Money(1, "USD"), Money(2, "USD")], Money.zero("USD")) == Money(3, "USD")


def test_multiplication_by_int() -> None:
    assert Money(333, "USD") * 3 == Money(999, "USD")
    assert 3 * Money(333, "USD") == Money(999, "USD")
    assert Money(333, "USD") * -1 == Money(-333, "USD")
    assert Money(333, "USD") * 0 == Money(0, "USD")


@pytest.mark.parametrize("factor", [1.5, 2.0])
def test_multiplication_by_float_is_refused(factor: float) -> None:
    with pytest.raises(TypeError, match="cannot represent money exactly"):
        Money(100, "USD") * factor  # type: ignore[operator]
    with pytest.raises(TypeError, match="cannot represent money exactly"):
        factor * Money(100, "USD")  # type: ignore[operator]


@pytest.mark.parametrize("factor", [True, Decimal("1.5"), "2", Money(2, "USD")])
def test_multiplication_by_other_types_is_refused(factor: object) -> None:
    with pytest.raises(TypeError):
        Money(100, "USD") * factor  # type: ignore[operator]
    with pytest.raises(TypeError):
        factor * Money(100, "USD")  # type: ignore[operator]


@pytest.mark.parametrize("other", [1, 1.0, Decimal(1), "1", None])
def test_adding_non_money_is_a_type_error(other: object) -> None:
    with pytest.raises(TypeError):
        Money(100, "USD") + other  # type: ignore[operator]
    with pytest.raises(TypeError):
        other + Money(100, "USD")  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money(100, "USD") - other  # type: ignore[operator]


def test_currency_mismatch_in_arithmetic() -> None:
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    with pytest.raises(CurrencyMismatchError, match="USD and EUR") as info:
        usd + eur
    assert info.value.code is ErrorCode.CURRENCY_MISMATCH
    with pytest.raises(CurrencyMismatchError):
        usd - eur


def test_comparisons() -> None:
    small, big = Money(100, "USD"), Money(200, "USD")
    assert small < big
    assert small <= big
    assert small <= Money(100, "USD")
    assert big > small
    assert big >= small
    assert big >= Money(200, "USD")
    assert not big < small
    assert sorted([big, small]) == [small, big]
    assert max(small, big) == big


@pytest.mark.parametrize("compare", ["__lt__", "__le__", "__gt__", "__ge__"])
def test_comparison_across_currencies_raises(compare: str) -> None:
    with pytest.raises(CurrencyMismatchError):
        getattr(Money(100, "USD"), compare)(Money(100, "EUR"))


def test_ordering_against_non_money_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Money(100, "USD") < 100  # type: ignore[operator]  # noqa: B015


@property_settings
@given(a=money(), b=money(), c=money())
def test_addition_is_associative_and_commutative(a: Money, b: Money, c: Money) -> None:
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
    assert a + Money.zero("USD") == a
    assert a - b == a + (-b)
    assert (a - b) + b == a


@property_settings
@given(a=money(), k=st.integers(min_value=-1000, max_value=1000), j=st.integers(-1000, 1000))
def test_multiplication_distributes(a: Money, k: int, j: int) -> None:
    assert a * (k + j) == a * k + a * j
    assert (a * k).amount == a.amount * k


@property_settings
@given(x=amounts, y=amounts, first=currencies, second=currencies)
def test_mismatched_currencies_always_raise(x: int, y: int, first: str, second: str) -> None:
    a, b = Money(x, first), Money(y, second)
    if first == second:
        assert (a + b).amount == x + y
        assert (a < b) == (x < y)
    else:
        assert a != b
        with pytest.raises(CurrencyMismatchError):
            a + b
        with pytest.raises(CurrencyMismatchError):
            a - b
        with pytest.raises(CurrencyMismatchError):
            a < b  # noqa: B015


# -- allocation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "ratios", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (5, [3, 7], [2, 3]),  # exact shares 1.5 and 3.5: the tie goes to the earlier part
        (10, [1, 0, 1], [5, 0, 5]),
        (1, [0, 0, 1], [0, 0, 1]),
        (0, [1, 2], [0, 0]),
        (100, [70, 20, 10], [70, 20, 10]),
        (101, [70, 20, 10], [71, 20, 10]),  # remainders 0.7, 0.2, 0.1: the largest wins
        (2, [1, 1, 1], [1, 1, 0]),
    ],
)
def test_allocate_examples(amount: int, ratios: list[int], expected: list[int]) -> None:
    assert Money(amount, "USD").allocate(ratios) == [Money(part, "USD") for part in expected]


def test_split_examples() -> None:
    assert Money(1000, "USD").split(3) == [Money(334, "USD"), Money(333, "USD"), Money(333, "USD")]
    assert Money(7, "JPY").split(1) == [Money(7, "JPY")]
    assert Money(3, "EUR").split(5) == [Money(1, "EUR")] * 3 + [Money(0, "EUR")] * 2


@pytest.mark.parametrize("ratios", [[], [0], [0, 0], [1, -1], [-1]])
def test_allocate_refuses_bad_ratios(ratios: list[int]) -> None:
    with pytest.raises(ValueError, match="ratio"):
        Money(100, "USD").allocate(ratios)


@pytest.mark.parametrize("ratios", [[0.5, 0.5], [1, 2.0], [True, 1], [Decimal(1)], ["1"]])
def test_allocate_refuses_non_int_ratios(ratios: list[object]) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        Money(100, "USD").allocate(ratios)  # type: ignore[arg-type]


def test_allocate_refuses_float_ratios_with_guidance() -> None:
    with pytest.raises(TypeError, match="cannot represent money exactly"):
        Money(100, "USD").allocate([0.3, 0.7])  # type: ignore[list-item]


@pytest.mark.parametrize("n", [0, -1])
def test_split_refuses_fewer_than_one_part(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Money(100, "USD").split(n)


@pytest.mark.parametrize("n", [2.0, True, "2"])
def test_split_refuses_non_int(n: object) -> None:
    with pytest.raises(TypeError):
        Money(100, "USD").split(n)  # type: ignore[arg-type]


@property_settings
@given(amount=amounts, ratios=ratio_lists, currency=currencies)
def test_allocate_sums_to_original_and_stays_within_one_unit(
    amount: int, ratios: list[int], currency: str
) -> None:
    original = Money(amount, currency)
    parts = original.allocate(ratios)
    total = sum(ratios)
    assert len(parts) == len(ratios)
    assert all(part.currency == original.currency for part in parts)
    assert sum(parts, Money.zero(currency)) == original
    for part, ratio in zip(parts, ratios, strict=True):
        # |part - amount * ratio / total| < 1, in integers.
        assert abs(part.amount * total - amount * ratio) < total
        if ratio == 0:
            assert part.is_zero


@property_settings
@given(amount=amounts, n=st.integers(min_value=1, max_value=50))
def test_equal_ratios_give_parts_within_one_unit(amount: int, n: int) -> None:
    parts = Money(amount, "USD").split(n)
    assert parts == Money(amount, "USD").allocate([7] * n)
    values = [part.amount for part in parts]
    assert max(values) - min(values) <= 1
    assert sum(values) == amount
    # the larger parts come first
    assert values == sorted(values, key=abs, reverse=True)


@property_settings
@given(amount=amounts, ratios=ratio_lists)
def test_allocate_is_sign_symmetric(amount: int, ratios: list[int]) -> None:
    positive = Money(amount, "EUR").allocate(ratios)
    negative = Money(-amount, "EUR").allocate(ratios)
    assert negative == [-part for part in positive]


@property_settings
@given(amount=amounts, ratios=ratio_lists, scale=st.integers(min_value=1, max_value=100))
def test_allocate_depends_only_on_the_proportions(amount: int, ratios: list[int], scale: int) -> None:
    original = Money(amount, "USD")
    assert original.allocate(ratios) == original.allocate([ratio * scale for ratio in ratios])
