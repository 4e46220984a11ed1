"""Tests for the error tree: codes, the documented hierarchy, and the errors' details."""

from __future__ import annotations

import re

import pytest

from fastapi_cashier import errors
from fastapi_cashier.errors import (
    AuthenticationRequiredError,
    CashierError,
    ConfigurationError,
    ErrorCode,
    InvalidProviderRequestError,
    MissingDependencyError,
    PaymentDeclinedError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    UnknownCurrencyError,
    ValidationError,
)

ERROR_CLASSES: list[type[CashierError]] = [
    getattr(errors, name) for name in errors.__all__ if name != "ErrorCode"
]

_TREE_LINE = re.compile(r"^(?P<prefix>[ │]*)(?:├── |└── )(?P<name>\w+)")


def _drawn_tree() -> tuple[str, dict[str, str]]:
    """The root of the tree drawn in the module docstring, and each drawn class's drawn parent."""
    doc = errors.__doc__
    assert doc is not None
    lines = doc.splitlines()
    root_index = next(i for i, line in enumerate(lines) if line.strip() == "CashierError")
    root_column = len(lines[root_index]) - len(lines[root_index].lstrip())
    parents: dict[str, str] = {}
    stack: list[str] = ["CashierError"]  # stack[d] is the latest class drawn at depth d
    for line in lines[root_index + 1 :]:
        match = _TREE_LINE.match(line)
        if match is None:
            if line.strip():
                break  # the drawing is over
            continue
        width = len(match["prefix"]) - root_column
        assert width % 4 == 0, f"misaligned tree line: {line!r}"
        depth = width // 4 + 1
        assert 1 <= depth <= len(stack), f"tree line deeper than its parent: {line!r}"
        del stack[depth:]
        name = match["name"]
        assert name not in parents, f"{name} drawn twice"
        parents[name] = stack[depth - 1]
        stack.append(name)
    return "CashierError", parents


def test_every_exported_error_is_a_cashier_error_with_a_code() -> None:
    assert ERROR_CLASSES
    for cls in ERROR_CLASSES:
        assert issubclass(cls, CashierError), cls
        assert isinstance(cls.code, ErrorCode), cls
    assert "ErrorCode" in errors.__all__


def test_codes_are_unique_per_class() -> None:
    by_code: dict[ErrorCode, list[str]] = {}
    for cls in ERROR_CLASSES:
        by_code.setdefault(cls.code, []).append(cls.__name__)
    shared = {code: names for code, names in by_code.items() if len(names) > 1}
    assert shared == {}


def test_every_subclass_declares_its_own_code() -> None:
    for cls in ERROR_CLASSES:
        if cls is not CashierError:
            assert "code" in vars(cls), f"{cls.__name__} inherits its parent's code"


def test_error_codes_are_snake_case_strings() -> None:
    for code in ErrorCode:
        assert re.fullmatch(r"[a-z]+(?:_[a-z]+)*", code.value), code
        assert code.value == code.name.lower()


def test_docstring_tree_names_every_error() -> None:
    root, parents = _drawn_tree()
    drawn = {root, *parents}
    exported = {cls.__name__ for cls in ERROR_CLASSES}
    assert drawn == exported


def test_docstring_tree_matches_the_real_bases() -> None:
    _, parents = _drawn_tree()
    assert parents
    for name, drawn_parent in parents.items():
        cls = getattr(errors, name)
        real_parents = [base.__name__ for base in cls.__bases__ if issubclass(base, CashierError)]
        assert real_parents == [drawn_parent], (
            f"{name}: drawn under {drawn_parent}, derives from {real_parents}"
        )


def test_cashier_error_message_and_details() -> None:
    details = {"id": "x"}
    error = CashierError("something broke", details=details)
    assert str(error) == "something broke"
    assert error.message == "something broke"
    assert error.args == ("something broke",)
    assert error.details == {"id": "x"}
    details["id"] = "changed"
    assert error.details == {"id": "x"}, "details must be copied"
    assert CashierError("no details").details == {}
    assert CashierError.code is ErrorCode.INTERNAL_ERROR


def test_missing_dependency_names_the_extra() -> None:
    error = MissingDependencyError("stripe", "stripe")
    assert "pip install 'fastapi-cashier[stripe]'" in error.message
    assert "'stripe' is not installed" in error.message
    assert error.details == {"package": "stripe", "extra": "stripe"}
    assert error.code is ErrorCode.MISSING_DEPENDENCY
    assert isinstance(error, ConfigurationError)

    other = MissingDependencyError("asyncpg", "postgres")
    assert "fastapi-cashier[postgres]" in str(other)
    assert "'asyncpg'" in str(other)


def test_validation_error_field_goes_in_details() -> None:
    error = ValidationError("amount must be positive", field="amount", details={"min": 1})
    assert error.field == "amount"
    assert error.details == {"min": 1, "field": "amount"}
    assert error.code is ErrorCode.VALIDATION_ERROR

    bare = ValidationError("bad input")
    assert bare.field is None
    assert "field" not in bare.details


def test_currency_errors_are_also_value_errors() -> None:
    error = UnknownCurrencyError("Unknown currency 'ABC'", field="currency")
    assert isinstance(error, ValueError)
    assert isinstance(error, ValidationError)
    assert error.details == {"field": "currency"}
    with pytest.raises(ValueError, match="ABC"):
        raise error


def test_provider_error_details() -> None:
    error = ProviderError("upstream said no", provider="stripe", provider_code="card_declined")
    assert error.provider == "stripe"
    assert error.provider_code == "card_declined"
    assert error.details == {"provider": "stripe", "provider_code": "card_declined"}
    assert error.code is ErrorCode.PROVIDER_ERROR

    no_code = ProviderError("upstream failed", provider="paypal", details={"request_id": "r1"})
    assert no_code.provider_code is None
    assert no_code.details == {"provider": "paypal", "request_id": "r1"}


@pytest.mark.parametrize(
    ("cls", "retriable"),
    [
        (ProviderError, False),
        (ProviderConnectionError, True),
        (ProviderRateLimitError, True),
        (InvalidProviderRequestError, False),
        (PaymentDeclinedError, False),
        (AuthenticationRequiredError, False),
    ],
)
def test_retriable_flags(cls: type[ProviderError], retriable: bool) -> None:
    assert cls.retriable is retriable
    error = cls("failed", provider="fake", provider_code="x")
    assert error.retriable is retriable
    assert error.details == {"provider": "fake", "provider_code": "x"}


def test_every_provider_error_is_in_the_retriable_table() -> None:
    provider_errors = {cls for cls in ERROR_CLASSES if issubclass(cls, ProviderError)}
    assert provider_errors == {
        ProviderError,
        ProviderConnectionError,
        ProviderRateLimitError,
        InvalidProviderRequestError,
        PaymentDeclinedError,
        AuthenticationRequiredError,
    }
