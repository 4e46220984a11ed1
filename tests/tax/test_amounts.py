"""Net, tax and gross in minor units: rounding half to even, once per rate of an invoice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_cashier.tax import compute_tax, split_tax

RATES = [Decimal(0), Decimal(7), Decimal(19), Decimal(20), Decimal("25.5"), Decimal(27)]


def test_exclusive_adds_the_tax() -> None:
    line = split_tax(1000, Decimal(19), prices_include_tax=False)
    assert (line.net, line.tax, line.gross) == (1000, 190, 1190)


def test_inclusive_takes_the_tax_out() -> None:
    line = split_tax(1190, Decimal(19), prices_include_tax=True)
    assert (line.net, line.tax, line.gross) == (1000, 190, 1190)


@pytest.mark.parametrize(
    ("net", "rate", "tax"),
    [
        (50, Decimal(1), 0),  # 0.5 -> 0 (even)
        (150, Decimal(1), 2),  # 1.5 -> 2 (even)
        (250, Decimal(1), 2),  # 2.5 -> 2 (even)
        (350, Decimal(1), 4),  # 3.5 -> 4
        (1, Decimal(50), 0),  # 0.5 -> 0
        (3, Decimal(50), 2),  # 1.5 -> 2
        (999, Decimal("25.5"), 255),  # 254.745 -> 255
    ],
)
def test_exclusive_tax_rounds_half_to_even(net: int, rate: Decimal, tax: int) -> None:
    assert split_tax(net, rate, prices_include_tax=False).tax == tax


def test_inclusive_net_rounds_half_to_even() -> None:
    # 101 / 1.01 = 100 exactly; 3 * 100 / 150 = 2; 1 * 100 / 200 = 0.5 -> 0
    assert split_tax(101, Decimal(1), prices_include_tax=True).net == 100
    assert split_tax(3, Decimal(50), prices_include_tax=True).net == 2
    one = split_tax(1, Decimal(100), prices_include_tax=True)
    assert (one.net, one.tax) == (0, 1)


def test_rounding_is_per_invoice_not_per_line() -> None:
    # Three lines of 0.05 at 10 %: per line 0.005 each -> 0 x 3 = 0; on the sum 0.015 -> 0.02.
    breakdown = compute_tax([(5, Decimal(10))] * 3, prices_include_tax=False)
    assert (breakdown.net, breakdown.tax, breakdown.gross) == (15, 2, 17)
    assert len(breakdown.lines) == 1


def test_one_tax_line_per_rate_highest_first() -> None:
    breakdown = compute_tax(
        [(1000, Decimal(19)), (500, Decimal(7)), (2000, Decimal(19)), (-300, Decimal(19))],
        prices_include_tax=False,
    )
    assert [(line.rate, line.net, line.tax, line.gross) for line in breakdown.lines] == [
        (Decimal(19), 2700, 513, 3213),
        (Decimal(7), 500, 35, 535),
    ]
    assert (breakdown.net, breakdown.tax, breakdown.gross) == (3200, 548, 3748)


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError, match="integer"):
        split_tax(10.5, Decimal(19), prices_include_tax=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer"):
        compute_tax([(10.0, Decimal(19))], prices_include_tax=False)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="negative"):
        split_tax(10, Decimal(-1), prices_include_tax=False)


@given(st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from(RATES), st.booleans())
def test_net_plus_tax_is_always_gross(amount: int, rate: Decimal, inclusive: bool) -> None:
    line = split_tax(amount, rate, prices_include_tax=inclusive)
    assert line.net + line.tax == line.gross
    assert (line.gross if inclusive else line.net) == amount
    exact = Decimal(line.net) * rate / 100
    assert abs(Decimal(line.tax) - exact) <= Decimal(1)


@given(st.lists(st.tuples(st.integers(0, 10**9), st.sampled_from(RATES)), max_size=20), st.booleans())
def test_an_invoice_adds_up(lines: list[tuple[int, Decimal]], inclusive: bool) -> None:
    breakdown = compute_tax(lines, prices_include_tax=inclusive)
    assert breakdown.net + breakdown.tax == breakdown.gross
    assert sum(line.gross for line in breakdown.lines) == breakdown.gross
    assert (breakdown.gross if inclusive else breakdown.net) == sum(amount for amount, _ in lines)
    assert len({line.rate for line in breakdown.lines}) == len(breakdown.lines)
