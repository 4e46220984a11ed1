"""The billing profile with tax on: VIES on save, the schedule, the admin's exemption."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from fastapi_cashier.db.models import BillingProfile

from ..http.conftest import Harness
from ..http.test_bad_input import assert_domain_refusal
from .conftest import UNCONFIRMED_FR, VALID_FR
from .vies_server import VIESState

pytestmark = [pytest.mark.anyio, pytest.mark.db]

UNREGISTERED_FR = "FR44732829320"


def profile(tax_id: str | None, country: str = "FR", **extra: Any) -> dict[str, Any]:
    return {
        "legal_name": "Exemple SAS",
        "city": "Paris",
        "postal_code": "75002",
        "country": country,
        "tax_id": tax_id,
        **extra,
    }


async def put(harness: Harness, body: dict[str, Any], subject: str = "alice") -> dict[str, Any]:
    response = await harness.client.put(
        "/billing/me/billing-profile", json=body, headers=harness.auth(subject)
    )
    assert response.status_code == 200, response.text
    saved: dict[str, Any] = response.json()
    return saved


async def test_a_registered_number_is_valid_with_its_proof(tax_harness: Harness) -> None:
    saved = await put(tax_harness, profile(VALID_FR))
    assert saved["tax_id_status"] == "valid"
    assert saved["tax_id_checked_at"].startswith("2026-12-06T10:15:00")
    assert saved["tax_id_consultation_number"].startswith("WAPIAAAAZ")
    again = await tax_harness.client.get("/billing/me/billing-profile", headers=tax_harness.auth("alice"))
    assert again.json() == saved


async def test_an_unregistered_number_is_invalid(tax_harness: Harness) -> None:
    saved = await put(tax_harness, profile(UNREGISTERED_FR))
    assert saved["tax_id_status"] == "invalid"
    assert saved["tax_id_checked_at"] is not None


async def test_vies_unavailable_saves_the_profile_unverified_and_schedules_a_retry(
    tax_harness: Harness, vies: tuple[VIESState, str]
) -> None:
    saved = await put(tax_harness, profile(UNCONFIRMED_FR))
    assert saved["tax_id"] == UNCONFIRMED_FR.replace(" ", "")
    assert saved["tax_id_status"] == "unverified"
    assert saved["tax_id_checked_at"] is None
    async with tax_harness.payments.service() as svc:
        row = (await svc.session.execute(sa.select(BillingProfile))).scalar_one()
        assert row.tax_id_next_check_at is not None
        assert row.tax_id_next_check_at > datetime.now(UTC) + timedelta(minutes=50)
        # Nothing is due yet: the scheduled run leaves it alone.
        assert await svc.tax_ids.recheck_due() == {"valid": 0, "invalid": 0, "unavailable": 0}
        row.tax_id_next_check_at = datetime.now(UTC) - timedelta(seconds=1)
        await svc.commit()

    # Still down: still unverified, retried later again.
    async with tax_harness.payments.service() as svc:
        assert await svc.tax_ids.recheck_due() == {"valid": 0, "invalid": 0, "unavailable": 1}
    shown = await tax_harness.client.get("/billing/me/billing-profile", headers=tax_harness.auth("alice"))
    assert shown.json()["tax_id_status"] == "unverified"

    # The register is back and confirms the number: the background job records it.
    state, _ = vies
    number = UNCONFIRMED_FR.replace(" ", "")
    state.unavailable_numbers.discard(number)
    state.valid[number] = ("SOCIETE EXEMPLE", "2 RUE DU PORT 13002 MARSEILLE")
    try:
        async with tax_harness.payments.service() as svc:
            row = (await svc.session.execute(sa.select(BillingProfile))).scalar_one()
            row.tax_id_next_check_at = datetime.now(UTC) - timedelta(seconds=1)
            await svc.commit()
        counts = await tax_harness.payments.housekeeping()
        assert counts["tax_ids_checked"] == 1
    finally:
        state.valid.pop(number)
        state.unavailable_numbers.add(number)
    shown = await tax_harness.client.get("/billing/me/billing-profile", headers=tax_harness.auth("alice"))
    assert shown.json()["tax_id_status"] == "valid"
    assert shown.json()["tax_id_consultation_number"].startswith("WAPIAAAAZ")


async def test_an_earlier_answer_stands_while_vies_is_down(
    tax_harness: Harness, vies: tuple[VIESState, str]
) -> None:
    first = await put(tax_harness, profile(VALID_FR))
    assert first["tax_id_status"] == "valid"
    state, _ = vies
    state.unavailable_states.add("FR")
    try:
        again = await put(tax_harness, profile(VALID_FR, city="Lyon"))
    finally:
        state.unavailable_states.discard("FR")
    assert again["city"] == "Lyon"
    assert again["tax_id_status"] == "valid"
    assert again["tax_id_consultation_number"] == first["tax_id_consultation_number"]


async def test_a_changed_number_forgets_the_old_answer(tax_harness: Harness) -> None:
    assert (await put(tax_harness, profile(VALID_FR)))["tax_id_status"] == "valid"
    changed = await put(tax_harness, profile(UNCONFIRMED_FR))
    assert changed["tax_id_status"] == "unverified"
    assert changed["tax_id_consultation_number"] is None
    removed = await put(tax_harness, profile(None))
    assert (removed["tax_id"], removed["tax_id_status"]) == (None, "unverified")


async def test_a_number_of_another_country_is_refused(tax_harness: Harness) -> None:
    response = await tax_harness.client.put(
        "/billing/me/billing-profile", json=profile(VALID_FR, country="DE"), headers=tax_harness.auth("alice")
    )
    assert_domain_refusal(response, "tax_id")
    assert "VAT number of FR, not of DE" in response.text


async def test_a_customer_cannot_exempt_itself(tax_harness: Harness) -> None:
    response = await tax_harness.client.put(
        "/billing/me/billing-profile", json=profile(None, tax_exempt=True), headers=tax_harness.auth("alice")
    )
    assert_domain_refusal(response, "tax_exempt")
    assert "granted by an admin" in response.text


async def test_an_admin_exempts_with_a_reason_and_a_profile_save_keeps_it(tax_harness: Harness) -> None:
    me = await tax_harness.client.get("/billing/me", headers=tax_harness.auth("alice"))
    customer_id = me.json()["id"]
    url = f"/billing/admin/customers/{customer_id}/tax-exemption"
    no_reason = await tax_harness.client.put(
        url, json={"tax_exempt": True}, headers=tax_harness.auth("root", admin=True)
    )
    assert_domain_refusal(no_reason, "reason")
    by_customer = await tax_harness.client.put(
        url, json={"tax_exempt": True, "reason": "mine"}, headers=tax_harness.auth("alice")
    )
    assert by_customer.status_code == 403
    granted = await tax_harness.client.put(
        url,
        json={"tax_exempt": True, "reason": "UN agency, Art. 151 Directive 2006/112/EC"},
        headers=tax_harness.auth("root", admin=True),
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["tax_exempt"] is True
    saved = await put(tax_harness, profile(None, country="CH"))
    assert saved["tax_exempt"] is True
    assert saved["tax_exempt_reason"] == "UN agency, Art. 151 Directive 2006/112/EC"
    lifted = await tax_harness.client.put(
        url, json={"tax_exempt": False}, headers=tax_harness.auth("root", admin=True)
    )
    assert (lifted.json()["tax_exempt"], lifted.json()["tax_exempt_reason"]) == (False, None)
