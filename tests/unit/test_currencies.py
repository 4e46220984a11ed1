"""Tests for the ISO 4217 table and currency-code normalisation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastapi_cashier.currencies import (
    CURRENCY_EXPONENTS,
    currency_exponent,
    is_known_currency,
    normalize_currency,
)
from fastapi_cashier.errors import ErrorCode, UnknownCurrencyError, ValidationError

KNOWN_CODES = sorted(CURRENCY_EXPONENTS)


@pytest.mark.parametrize(
    ("code", "exponent"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("VND", 0),
        ("XOF", 0),
        ("XAF", 0),
        ("XPF", 0),
        ("UGX", 0),
        ("PYG", 0),
        ("CLP", 0),
        ("UYI", 0),
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("CHF", 2),
        ("USN", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("LYD", 3),
        ("IQD", 3),
        ("CLF", 4),
        ("UYW", 4),
    ],
)
def test_exponent_of_sample_codes(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent
    assert CURRENCY_EXPONENTS[code] == exponent


def test_table_is_large_and_well_formed() -> None:
    assert len(CURRENCY_EXPONENTS) >= 150
    for code, exponent in CURRENCY_EXPONENTS.items():
        assert re.fullmatch(r"[A-Z]{3}", code), code
        assert exponent in {0, 2, 3, 4}, (code, exponent)


@pytest.mark.parametrize("code", ["USN", "CHE", "CHW", "BOV", "CLF", "COU", "MXV", "UYI", "UYW"])
def test_funds_codes_are_included(code: str) -> None:
    assert code in CURRENCY_EXPONENTS


@pytest.mark.parametrize("code", ["VES", "VED", "SLE", "ZWG", "XCG", "STN", "MRU"])
def test_recent_codes_are_included(code: str) -> None:
    assert code in CURRENCY_EXPONENTS


@pytest.mark.parametrize(
    "code",
    [
        # no minor unit
        "XAU",
        "XAG",
        "XPT",
        "XPD",
        "XDR",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XTS",
        "XXX",
        "XSU",
        "XUA",
        # withdrawn
        "HRK",
        "ZWL",
        "SLL",
        "ANG",
        "CUC",
        "VEF",
        "MRO",
        "STD",
        "LTL",
    ],
)
def test_codes_without_minor_unit_or_withdrawn_are_excluded(code: str) -> None:
    assert code not in CURRENCY_EXPONENTS
    assert not is_known_currency(code)
    with pytest.raises(UnknownCurrencyError):
        currency_exponent(code)


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        CURRENCY_EXPONENTS["ABC"] = 2  # type: ignore[index]
    assert "ABC" not in CURRENCY_EXPONENTS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("USD", "USD"), ("usd", "USD"), ("usd ", "USD"), ("\tjPy\n", "JPY"), (" kwd", "KWD")],
)
def test_normalize_strips_and_upper_cases(raw: str, expected: str) -> None:
    assert normalize_currency(raw) == expected
    assert is_known_currency(raw)


@pytest.mark.parametrize(
    "raw", ["ABC", "US", "USDD", "", "   ", "U SD", "usd$", "\uff35\uff33\uff24", "u\u017fd", "EURO"]
)
def test_unknown_codes_are_refused(raw: str) -> None:
    with pytest.raises(UnknownCurrencyError) as info:
        normalize_currency(raw)
    message = str(info.value)
    assert repr(raw) in message
    assert "three-letter ISO 4217 code" in message
    assert info.value.code is ErrorCode.UNKNOWN_CURRENCY
    assert info.value.details["field"] == "currency"
    assert not is_known_currency(raw)


def test_unknown_currency_error_is_a_validation_and_value_error() -> None:
    with pytest.raises(ValidationError):
        currency_exponent("ABC")
    with pytest.raises(ValueError, match="'ABC'"):
        currency_exponent("ABC")


def test_long_input_is_not_echoed_in_full() -> None:
    raw = "X" * 10_000
    with pytest.raises(UnknownCurrencyError) as info:
        normalize_currency(raw)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("raw", [None, 840, b"USD", ["USD"], 2.0])
def test_non_strings_are_refused(raw: object) -> None:
    with pytest.raises(UnknownCurrencyError, match="three-letter ISO 4217 code") as info:
        normalize_currency(raw)
    assert type(raw).__name__ in str(info.value)
    assert not is_known_currency(raw)


def test_currency_exponent_normalises_its_argument() -> None:
    assert currency_exponent(" kwd ") == 3


@settings(database=None)
@given(code=st.sampled_from(KNOWN_CODES), data=st.data())
def test_any_casing_and_padding_of_a_known_code_normalises(code: str, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.booleans(), min_size=3, max_size=3))
    padding = data.draw(st.sampled_from(["", " ", "\t", "  \n"]))
    raw = padding + "".join(c.lower() if flip else c for c, flip in zip(code, flips, strict=True)) + padding
    assert normalize_currency(raw) == code
    assert currency_exponent(raw) == CURRENCY_EXPONENTS[code]


@settings(database=None)
@given(st.from_regex(r"[A-Z]{3}", fullmatch=True))
def test_is_known_currency_agrees_with_the_table(code: str) -> None:
    assert is_known_currency(code) == (code in CURRENCY_EXPONENTS)
