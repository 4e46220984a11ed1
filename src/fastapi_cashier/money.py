"""The :class:`Money` value type: an exact integer amount of minor units in one currency.

Money never touches ``float``. Amounts are stored as integer minor units (cents for ``USD``, yen
for ``JPY``, fils for ``KWD``) and converted to and from :class:`~decimal.Decimal` exactly, using
the currency's ISO 4217 exponent. Floats are refused with :class:`TypeError` wherever they could
enter, because ``0.1 + 0.2 != 0.3``.

Example::

    >>> price = Money.from_decimal("19.99", "USD")
    >>> price
    Money(1999, 'USD')
    >>> str(price * 3)
    '59.97 USD'
    >>> [str(part) for part in Money(1000, "USD").split(3)]
    ['3.34 USD', '3.33 USD', '3.33 USD']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    InvalidOperation,
)
from typing import Final

from fastapi_cashier.currencies import currency_exponent, normalize_currency
from fastapi_cashier.errors import CurrencyMismatchError, ValidationError

__all__ = ["Money", "minor_units_hint"]

_MAX_DIGITS: Final = 60
"""Decimal input with more integer or significant digits than this is refused.

Guards against ``'1E+999999999'`` and megabyte-long digit strings; real amounts are far smaller.
"""

_ROUNDING_MODES: Final = frozenset(
    {
        ROUND_05UP,
        ROUND_CEILING,
        ROUND_DOWN,
        ROUND_FLOOR,
        ROUND_HALF_DOWN,
        ROUND_HALF_EVEN,
        ROUND_HALF_UP,
        ROUND_UP,
    }
)

_FLOAT_REFUSED: Final = "floats are refused because they cannot represent money exactly (0.1 + 0.2 != 0.3)"


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def _check_int(value: object, what: str) -> int:
    """Return ``value`` as a plain ``int``, refusing ``bool``, ``float`` and everything else."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float):
            raise TypeError(f"{what} must be an int, got {_describe(value)}: {_FLOAT_REFUSED}")
        raise TypeError(f"{what} must be an int, got {_describe(value)}")
    return int(value)


@dataclass(frozen=True, slots=True, repr=False)
class Money:
    """An exact amount of money: integer minor units of one ISO 4217 currency.

    Instances are immutable and hashable. Two values are equal when both the amount and the
    currency are equal, so ``Money(100, "USD") != Money(100, "EUR")``. Ordering, addition and
    subtraction across currencies raise :class:`~fastapi_cashier.errors.CurrencyMismatchError`.

    Args:
        amount: The amount in minor units (``1050`` is 10.50 USD); must be an ``int``.
        currency: An ISO 4217 code; normalised to upper case, so ``"usd"`` is accepted.

    Raises:
        TypeError: ``amount`` is a ``float``, ``Decimal``, ``str``, ``bool`` or other non-int; use
            :meth:`from_decimal` for decimal amounts.
        UnknownCurrencyError: ``currency`` is not a known ISO 4217 code.
    """

    amount: int
    currency: str

    def __post_init__(self) -> None:
        amount = self.amount
        if isinstance(amount, bool) or not isinstance(amount, int):
            if isinstance(amount, float):
                raise TypeError(
                    f"Money amount must be an int of minor units, got {_describe(amount)}: "
                    f"{_FLOAT_REFUSED}; pass integer minor units such as Money(1050, 'USD') "
                    f"or use Money.from_decimal(Decimal('10.50'), 'USD')"
                )
            raise TypeError(
                f"Money amount must be an int of minor units, got {_describe(amount)}; "
                f"use Money.from_decimal() to convert a Decimal or a decimal string"
            )
        if type(amount) is not int:  # an int subclass such as IntEnum: keep the plain value
            object.__setattr__(self, "amount", int(amount))
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Return no money in ``currency``.

        Args:
            currency: An ISO 4217 code.

        Returns:
            ``Money(0, currency)``.
        """
        return cls(0, currency)

    @classmethod
    def from_decimal(
        cls,
        value: Decimal | int | str,
        currency: str,
        *,
        rounding: str | None = None,
    ) -> Money:
        """Convert a decimal amount in major units (``"10.50"``) into :class:`Money`.

        The conversion is exact: by default a value with more decimal places than the currency
        has (``"10.505"`` USD, ``"1.5"`` JPY) is refused rather than silently rounded.

        Args:
            value: The amount in major units, as a ``Decimal``, an ``int`` or a decimal string.
            currency: An ISO 4217 code.
            rounding: A :mod:`decimal` rounding mode such as ``decimal.ROUND_HALF_EVEN``; when
                given, excess precision is rounded with it instead of being refused.

        Returns:
            The amount as integer minor units of ``currency``.

        Raises:
            TypeError: ``value`` is a ``float``, ``bool`` or another unsupported type.
            ValueError: ``rounding`` is not one of the :mod:`decimal` rounding modes.
            ValidationError: ``value`` is not a number, is NaN or infinite, has more than 60
                integer or significant digits, or (without ``rounding``) has more decimal places than the
                currency allows. ``details["field"]`` is ``"amount"``.
            UnknownCurrencyError: ``currency`` is not a known ISO 4217 code.
        """
        if rounding is not None and rounding not in _ROUNDING_MODES:
            raise ValueError(
                f"Invalid rounding mode {rounding!r}: use a decimal module constant such as "
                f"decimal.ROUND_HALF_EVEN"
            )
        code = normalize_currency(currency)
        exponent = currency_exponent(code)
        number = cls._parse_decimal(value)
        if not number.is_finite():
            raise ValidationError(
                f"Amount {number} is not a finite number", field="amount", details={"currency": code}
            )
        sign, digits, exp = number.as_tuple()
        if number.adjusted() >= _MAX_DIGITS or len(digits) > _MAX_DIGITS:
            raise ValidationError(
                f"Amount has too many digits: at most {_MAX_DIGITS} are accepted",
                field="amount",
                details={"currency": code},
            )
        assert isinstance(exp, int)  # finite numbers have an integer exponent
        coefficient = int("".join(map(str, digits)))
        shift = exp + exponent  # the power of ten that turns the coefficient into minor units
        if coefficient == 0:
            minor = 0
        elif shift >= 0:
            minor = coefficient * 10**shift
        elif rounding is None:
            # Exact only if the -shift lowest digits are all zero (never build 10**-shift: it can be huge).
            if -shift >= len(digits) or any(digits[shift:]):
                raise ValidationError(
                    f"Amount {number} is not representable exactly in {code}, which has {exponent} "
                    f"decimal place{'' if exponent == 1 else 's'}; round it first or pass rounding=",
                    field="amount",
                    details={"currency": code, "exponent": exponent},
                )
            minor = coefficient // 10**-shift
        else:
            # The precision leaves room for every digit the quantized value can have, so no
            # rounding other than the requested one can happen.
            context = Context(prec=_MAX_DIGITS + exponent + 2, rounding=rounding)
            rounded = number.quantize(Decimal((0, (1,), -exponent)), context=context)
            _, rounded_digits, _ = rounded.as_tuple()
            minor = int("".join(map(str, rounded_digits)))
        return cls(-minor if sign else minor, code)

    @staticmethod
    def _parse_decimal(value: object) -> Decimal:
        if isinstance(value, bool):
            raise TypeError(f"Money amount must be a Decimal, int or str, got {_describe(value)}")
        if isinstance(value, float):
            raise TypeError(
                f"Money amount must be a Decimal, int or str, got {_describe(value)}: {_FLOAT_REFUSED}; "
                f"pass Decimal('10.50') or the string '10.50' instead"
            )
        if isinstance(value, Decimal):
            return value
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, str):
            try:
                return Decimal(value.strip())
            except InvalidOperation:
                shown = value if len(value) <= 32 else value[:32] + "..."
                raise ValidationError(f"Amount {shown!r} is not a decimal number", field="amount") from None
        raise TypeError(f"Money amount must be a Decimal, int or str, got {_describe(value)}")

    # -- conversion ---------------------------------------------------------------------------

    @property
    def exponent(self) -> int:
        """The number of decimal places of the currency's minor unit (2 for USD, 0 for JPY)."""
        return currency_exponent(self.currency)

    def to_decimal(self) -> Decimal:
        """Return the amount in major units, exactly, with the currency's number of places.

        Returns:
            ``Decimal("10.50")`` for ``Money(1050, "USD")``, ``Decimal("1050")`` for JPY.
        """
        sign, digits, _ = Decimal(self.amount).as_tuple()
        return Decimal((sign, digits, -self.exponent))

    def format(self) -> str:
        """Return the amount and currency code, for logs and plain-text messages.

        Returns:
            For example ``"10.50 USD"``, ``"-3.000 KWD"`` or ``"1050 JPY"``.
        """
        return f"{self.to_decimal():f} {self.currency}"

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"Money({self.amount}, {self.currency!r})"

    # -- predicates ---------------------------------------------------------------------------

    @property
    def is_zero(self) -> bool:
        """True when the amount is zero."""
        return self.amount == 0

    @property
    def is_positive(self) -> bool:
        """True when the amount is greater than zero."""
        return self.amount > 0

    @property
    def is_negative(self) -> bool:
        """True when the amount is less than zero."""
        return self.amount < 0

    def __bool__(self) -> bool:
        return self.amount != 0

    # -- arithmetic ---------------------------------------------------------------------------

    def _check_same_currency(self, other: Money, operation: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(
                f"Cannot {operation} {self.currency} and {other.currency}: convert to one currency first",
                details={"currencies": [self.currency, other.currency]},
            )

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other, "add")
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other, "subtract")
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __mul__(self, other: object) -> Money:
        if isinstance(other, bool):
            raise TypeError(f"Money can only be multiplied by an int, got {_describe(other)}")
        if isinstance(other, int):
            return Money(self.amount * other, self.currency)
        if isinstance(other, float):
            raise TypeError(
                f"Money can only be multiplied by an int, got {_describe(other)}: {_FLOAT_REFUSED}"
            )
        if isinstance(other, Decimal):
            raise TypeError(
                f"Money can only be multiplied by an int, got {_describe(other)}; multiply "
                f"to_decimal() and convert back with Money.from_decimal(..., rounding=...)"
            )
        return NotImplemented

    def __rmul__(self, other: object) -> Money:
        return self.__mul__(other)

    # -- ordering -----------------------------------------------------------------------------

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other, "compare")
        return self.amount >= other.amount

    # -- allocation ---------------------------------------------------------------------------

    def allocate(self, ratios: Sequence[int]) -> list[Money]:
        """Split the amount by integer ratios without losing or creating a minor unit.

        Each part first gets the floor of its exact share; the minor units left over are then
        handed out one at a time to the parts with the largest remainders (largest-remainder
        method), earlier parts first on ties. The parts always add up to the original amount,
        each differs from its exact share by less than one minor unit, a zero ratio always gets
        zero, and the result for a negative amount is the negation of the result for its
        absolute value.

        Args:
            ratios: Non-negative ``int`` weights, at least one of them positive.

        Returns:
            One :class:`Money` per ratio, in the same order and currency.

        Raises:
            TypeError: A ratio is a ``float``, ``bool`` or other non-int.
            ValueError: ``ratios`` is empty, has a negative ratio, or sums to zero.
        """
        weights = [_check_int(ratio, "Allocation ratio") for ratio in ratios]
        if not weights:
            raise ValueError("Cannot allocate money over an empty list of ratios")
        if any(weight < 0 for weight in weights):
            raise ValueError(f"Allocation ratios must not be negative, got {weights!r}")
        total = sum(weights)
        if total == 0:
            raise ValueError("At least one allocation ratio must be greater than zero")

        magnitude = abs(self.amount)
        shares = [divmod(magnitude * weight, total) for weight in weights]
        parts = [quotient for quotient, _ in shares]
        leftover = magnitude - sum(parts)
        # leftover < number of non-zero remainders, so a part whose share is exact never gets one.
        order = sorted(range(len(weights)), key=lambda index: (-shares[index][1], index))
        for index in order[:leftover]:
            parts[index] += 1
        sign = -1 if self.amount < 0 else 1
        return [Money(sign * part, self.currency) for part in parts]

    def split(self, n: int) -> list[Money]:
        """Split the amount into ``n`` parts as equal as possible, larger parts first.

        Args:
            n: The number of parts, at least 1.

        Returns:
            ``n`` parts that differ by at most one minor unit and add up to the original.

        Raises:
            TypeError: ``n`` is not an ``int``.
            ValueError: ``n`` is less than 1.
        """
        count = _check_int(n, "Number of parts")
        if count < 1:
            raise ValueError(f"Cannot split money into {count} parts; n must be at least 1")
        return self.allocate([1] * count)


def minor_units_hint(value: object, currency: object = "EUR") -> str:
    """Explain, for an amount given as a decimal, that amounts are integer minor units.

    The example converts ``value`` when it is exact in ``currency`` (``19.99`` EUR is ``1999``),
    otherwise shows a sample amount of that currency; an unknown currency is explained with EUR.

    Args:
        value: The refused amount, as it came in (a ``float``, a ``str`` ...).
        currency: The currency the amount was given in.

    Returns:
        One sentence for an error message.
    """
    try:
        code = normalize_currency(currency)
    except ValidationError:
        code = "EUR"
    sample: Decimal | str = Decimal(1999).scaleb(-currency_exponent(code))
    if isinstance(value, float | str):
        try:
            converted = Money.from_decimal(str(value), code)
        except (TypeError, ValidationError):
            converted = None
        if converted is not None and converted.amount > 0:
            sample = str(value).strip()
    minor = Money.from_decimal(sample, code).amount
    return f"amounts are integers in minor units of the currency: {sample} {code} is {minor}"
