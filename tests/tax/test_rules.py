"""The VAT rules, case by case, and the dated rate table."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from fastapi_cashier.statuses import TaxIdStatus
from fastapi_cashier.tax import (
    EU_MEMBER_STATES,
    EXPORT_MENTION,
    REVERSE_CHARGE_MENTION,
    STANDARD_RATES,
    DatedRate,
    TaxBuyer,
    TaxRateTable,
    TaxTreatment,
    UnknownTaxRateError,
    decide_tax,
)

DAY = date(2026, 12, 6)


def test_there_are_27_member_states_each_with_a_rate_today() -> None:
    assert len(EU_MEMBER_STATES) == 27
    table = TaxRateTable()
    for country in EU_MEMBER_STATES:
        rate = table.rate(country, DAY)
        assert Decimal(15) <= rate <= Decimal(27), country


@pytest.mark.parametrize(
    ("country", "day", "rate"),
    [
        ("DE", date(2026, 1, 1), "19"),
        ("DE", date(2020, 8, 1), "16"),
        ("FR", DAY, "20"),
        ("FI", date(2024, 8, 31), "24"),
        ("FI", date(2024, 9, 1), "25.5"),
        ("EE", date(2025, 6, 30), "22"),
        ("EE", date(2025, 7, 1), "24"),
        ("SK", date(2024, 12, 31), "20"),
        ("SK", date(2025, 1, 1), "23"),
        ("RO", date(2025, 7, 31), "19"),
        ("RO", date(2025, 8, 1), "21"),
        ("LU", date(2023, 6, 1), "16"),
        ("LU", DAY, "17"),
        ("HU", DAY, "27"),
        ("GR", DAY, "24"),
    ],
)
def test_the_rate_of_a_day_is_the_latest_entry_on_or_before_it(country: str, day: date, rate: str) -> None:
    assert TaxRateTable().rate(country, day) == Decimal(rate)


def test_histories_are_in_date_order_and_have_no_float() -> None:
    for country, history in STANDARD_RATES.items():
        days = [entry.valid_from for entry in history]
        assert days == sorted(days), country
        assert all(isinstance(entry.rate, Decimal) for entry in history)


def test_no_rate_for_a_non_member_or_before_the_data_starts() -> None:
    with pytest.raises(UnknownTaxRateError, match="US"):
        TaxRateTable().rate("US", DAY)
    with pytest.raises(UnknownTaxRateError, match="2019-12-31"):
        TaxRateTable().rate("DE", date(2019, 12, 31))


def test_a_reduced_rate_applies_to_its_category_and_falls_back_elsewhere() -> None:
    table = TaxRateTable(reduced={"ebook": {"DE": (DatedRate(date(2020, 1, 1), Decimal(7)),)}})
    assert table.rate("DE", DAY, "ebook") == Decimal(7)
    assert table.rate("FR", DAY, "ebook") == Decimal(20)
    assert table.rate("DE", DAY, "software") == Decimal(19)
    assert table.rate("DE", DAY) == Decimal(19)


def test_seller_country_pays_the_seller_rate() -> None:
    decision = decide_tax("DE", TaxBuyer(country="DE"), DAY)
    assert (decision.treatment, decision.rate, decision.country, decision.mention) == (
        TaxTreatment.DOMESTIC,
        Decimal(19),
        "DE",
        None,
    )


def test_a_domestic_business_with_a_valid_number_still_pays_domestic_vat() -> None:
    buyer = TaxBuyer(country="DE", tax_id="DE123456789", tax_id_status=TaxIdStatus.VALID)
    decision = decide_tax("DE", buyer, DAY)
    assert decision.treatment is TaxTreatment.DOMESTIC
    assert decision.rate == Decimal(19)


def test_a_buyer_without_a_country_is_taxed_as_the_seller_country() -> None:
    decision = decide_tax("FR", TaxBuyer(), DAY)
    assert decision.treatment is TaxTreatment.DOMESTIC
    assert (decision.rate, decision.country) == (Decimal(20), "FR")


def test_verified_business_in_another_member_state_is_reverse_charged() -> None:
    buyer = TaxBuyer(country="FR", tax_id="FR40303265045", tax_id_status=TaxIdStatus.VALID)
    decision = decide_tax("DE", buyer, DAY)
    assert decision.treatment is TaxTreatment.REVERSE_CHARGE
    assert decision.rate == Decimal(0)
    assert decision.country == "FR"
    assert decision.mention == REVERSE_CHARGE_MENTION
    assert "Reverse charge" in REVERSE_CHARGE_MENTION


@pytest.mark.parametrize("status", [TaxIdStatus.UNVERIFIED, TaxIdStatus.INVALID])
def test_an_unconfirmed_number_is_taxed_as_a_consumer(status: TaxIdStatus) -> None:
    buyer = TaxBuyer(country="FR", tax_id="FR40303265045", tax_id_status=status)
    decision = decide_tax("DE", buyer, DAY)
    assert decision.treatment is TaxTreatment.EU_CONSUMER
    assert (decision.rate, decision.country, decision.mention) == (Decimal(20), "FR", None)


def test_a_valid_status_without_a_number_is_not_a_business() -> None:
    decision = decide_tax("DE", TaxBuyer(country="AT", tax_id_status=TaxIdStatus.VALID), DAY)
    assert decision.treatment is TaxTreatment.EU_CONSUMER
    assert decision.rate == Decimal(20)


def test_consumer_in_another_member_state_pays_that_state_rate_on_that_day() -> None:
    buyer = TaxBuyer(country="FI")
    assert decide_tax("DE", buyer, date(2024, 8, 31)).rate == Decimal(24)
    assert decide_tax("DE", buyer, date(2024, 9, 1)).rate == Decimal("25.5")


@pytest.mark.parametrize("country", ["US", "CH", "GB", "NO", "JP"])
def test_outside_the_eu_is_an_export_at_zero(country: str) -> None:
    decision = decide_tax("DE", TaxBuyer(country=country, tax_id="X1", tax_id_status=TaxIdStatus.VALID), DAY)
    assert decision.treatment is TaxTreatment.EXPORT
    assert (decision.rate, decision.country, decision.mention) == (Decimal(0), country, EXPORT_MENTION)


@pytest.mark.parametrize("country", ["DE", "FR", "US", None])
def test_an_exemption_wins_everywhere_and_carries_its_reason(country: str | None) -> None:
    buyer = TaxBuyer(country=country, tax_exempt=True, exemption_reason="Charity, certificate 42")
    decision = decide_tax("DE", buyer, DAY)
    assert decision.treatment is TaxTreatment.EXEMPT
    assert decision.rate == Decimal(0)
    assert decision.mention == "Charity, certificate 42"


def test_reduced_categories_follow_the_buyer_country_for_consumers() -> None:
    table = TaxRateTable(
        reduced={
            "ebook": {
                "DE": (DatedRate(date(2020, 1, 1), Decimal(7)),),
                "FR": (DatedRate(date(2020, 1, 1), Decimal("5.5")),),
            }
        }
    )
    assert decide_tax("DE", TaxBuyer(country="DE"), DAY, category="ebook", rates=table).rate == Decimal(7)
    assert decide_tax("DE", TaxBuyer(country="FR"), DAY, category="ebook", rates=table).rate == Decimal("5.5")
    assert decide_tax("DE", TaxBuyer(country="IT"), DAY, category="ebook", rates=table).rate == Decimal(22)
