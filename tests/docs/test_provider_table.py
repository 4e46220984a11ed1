"""The README's table of what each provider supports is the adapters' own declaration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastapi_cashier.providers.base import Capability
from fastapi_cashier.providers.fake import FakeProvider
from fastapi_cashier.providers.lemonsqueezy import LEMONSQUEEZY_CAPABILITIES
from fastapi_cashier.providers.manual import ManualProvider
from fastapi_cashier.providers.paypal import PAYPAL_CAPABILITIES
from fastapi_cashier.providers.stripe.provider import STRIPE_CAPABILITIES

README = Path(__file__).resolve().parents[2] / "README.rst"

pytestmark = pytest.mark.skipif(not README.exists(), reason="the README is not in this checkout")

DECLARED = {
    "fake": FakeProvider(webhook_secret="whsec_" + "t" * 32).capabilities,
    "manual": ManualProvider().capabilities,
    "stripe": STRIPE_CAPABILITIES,
    "paypal": PAYPAL_CAPABILITIES,
    "lemonsqueezy": LEMONSQUEEZY_CAPABILITIES,
}


def _table() -> tuple[list[str], dict[str, list[str]]]:
    text = README.read_text(encoding="utf-8")
    start = text.index("   * - Capability\n")
    rows: list[list[str]] = []
    for line in text[start:].splitlines():
        if line.startswith("   * - "):
            rows.append([line[len("   * - ") :]])
        elif line.startswith("     - "):
            rows[-1].append(line[len("     - ") :])
        elif line.strip():
            break
    header, *body = rows
    return header[1:], {row[0]: row[1:] for row in body}


def test_the_readme_names_every_provider_and_every_capability() -> None:
    providers, rows = _table()
    assert providers == list(DECLARED)
    assert list(rows) == [capability.value for capability in Capability]


@pytest.mark.parametrize("capability", list(Capability), ids=str)
def test_each_row_says_what_each_adapter_declares(capability: Capability) -> None:
    providers, rows = _table()
    expected = ["yes" if capability in DECLARED[name] else "--" for name in providers]
    assert rows[capability.value] == expected


def test_the_table_marks_every_cell() -> None:
    _, rows = _table()
    assert all(re.fullmatch(r"yes|--", cell) for cells in rows.values() for cell in cells)
