"""The protocol table of docs/architecture.rst says which adapter implements which part, truly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fastapi_cashier.providers import base
from fastapi_cashier.providers.fake import FakeProvider
from fastapi_cashier.providers.lemonsqueezy import LemonSqueezyProvider
from fastapi_cashier.providers.manual import ManualProvider
from fastapi_cashier.providers.paypal import PayPalProvider
from fastapi_cashier.providers.stripe import StripeProvider

PAGE = Path(__file__).resolve().parents[2] / "docs" / "architecture.rst"
ADAPTERS: dict[str, type[Any]] = {
    "fake": FakeProvider,
    "manual": ManualProvider,
    "stripe": StripeProvider,
    "paypal": PayPalProvider,
    "lemonsqueezy": LemonSqueezyProvider,
}
# Attributes of the core that every class declares as data, not methods.
DECLARED = {"name", "capabilities", "idempotency_keys", "proration_behaviors"}


def _table() -> tuple[list[str], dict[str, list[str]]]:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("   * - Part (capability)")
    end = text.index("What the protocol lets a provider say:")
    rows = re.split(r"\n   \* - ", "\n" + text[start:end].rstrip())[1:]
    header, *body = ([cell.strip() for cell in re.split(r"\n     - ", row)] for row in rows)
    columns = header[2:]
    marks: dict[str, list[str]] = {}
    for cells in body:
        part = re.match(r"``(\w+)``", cells[0])
        assert part is not None, cells[0]
        marks[part.group(1)] = cells[2:]
    return columns, marks


def _methods(protocol: type[Any]) -> set[str]:
    names = {
        name
        for klass in protocol.__mro__
        if klass.__name__ == protocol.__name__
        for name in vars(klass)
        if not name.startswith("_")
    }
    return names - DECLARED


def test_the_table_lists_every_adapter_and_every_part() -> None:
    columns, marks = _table()
    assert columns == list(ADAPTERS)
    parts = {
        name
        for name, value in vars(base).items()
        if isinstance(value, type) and getattr(value, "_is_protocol", False) and name in base.__all__
    }
    assert set(marks) == parts


@pytest.mark.parametrize("adapter", list(ADAPTERS))
def test_each_mark_matches_the_adapter_class(adapter: str) -> None:
    columns, marks = _table()
    klass = ADAPTERS[adapter]
    wrong = []
    for part, cells in marks.items():
        methods = _methods(getattr(base, part))
        implemented = all(hasattr(klass, method) for method in methods)
        said = cells[columns.index(adapter)]
        assert said in {"yes", "--"}, (part, said)
        if (said == "yes") != implemented:
            wrong.append(
                f"{part}: the page says {said!r}, the class {'has' if implemented else 'lacks'} {methods}"
            )
    assert wrong == []
