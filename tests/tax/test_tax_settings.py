"""The ``tax`` section of ``PaymentsSettings``: seller, price mode, number format, rates, VIES."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest

from fastapi_cashier.settings import PaymentsSettings

SELLER = {"legal_name": "Muster GmbH", "address_lines": ["Hauptstr. 1", "10115 Berlin"], "country": "de"}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYMENTS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def refused(**kwargs: Any) -> str:
    with pytest.raises(pydantic.ValidationError) as info:
        PaymentsSettings(**kwargs)
    return str(info.value)


def test_tax_is_off_without_a_seller() -> None:
    tax = PaymentsSettings().tax
    assert tax.seller is None
    assert tax.prices_include_tax is False
    assert tax.invoice_number_format == "INV-{number:06d}"
    assert tax.vies.enabled is True
    assert str(tax.vies.base_url).startswith("https://")
    assert tax.vies.timeout_seconds == 10.0


def test_seller_from_keywords() -> None:
    tax = PaymentsSettings(tax={"seller": {**SELLER, "vat_number": "DE123456789"}}).tax
    assert tax.seller is not None
    assert (tax.seller.country, tax.seller.vat_number) == ("DE", "DE123456789")
    assert tax.seller.address_lines == ["Hauptstr. 1", "10115 Berlin"]


def test_seller_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_TAX__SELLER__LEGAL_NAME", "Exemple SAS")
    monkeypatch.setenv("PAYMENTS_TAX__SELLER__COUNTRY", "FR")
    monkeypatch.setenv("PAYMENTS_TAX__PRICES_INCLUDE_TAX", "true")
    monkeypatch.setenv("PAYMENTS_TAX__VIES__TIMEOUT_SECONDS", "3")
    tax = PaymentsSettings().tax
    assert tax.seller is not None
    assert tax.seller.legal_name == "Exemple SAS"
    assert tax.prices_include_tax is True
    assert tax.vies.timeout_seconds == 3.0


def test_a_seller_outside_the_eu_is_refused() -> None:
    assert "EU member state" in refused(tax={"seller": {**SELLER, "country": "US"}})


@pytest.mark.parametrize("pattern", ["INV-{n}", "INV-{number:06d}-{month}", "FIXED", "{number:0100d}"])
def test_a_bad_number_format_is_refused(pattern: str) -> None:
    assert "invoice_number_format" in refused(tax={"invoice_number_format": pattern})


def test_a_number_format_with_the_year() -> None:
    tax = PaymentsSettings(tax={"invoice_number_format": "{year}-{number:05d}"}).tax
    assert tax.invoice_number_format.format(number=7, year=2026) == "2026-00007"


def test_reduced_rates_are_decimals_within_bounds() -> None:
    tax = PaymentsSettings(tax={"reduced_rates": {"ebook": {"DE": "7", "FR": "5.5"}}}).tax
    assert tax.reduced_rates["ebook"]["FR"] == Decimal("5.5")
    assert "within 0 and 100" in refused(tax={"reduced_rates": {"ebook": {"DE": "120"}}})
