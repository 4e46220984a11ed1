"""``fastapi-cashier tax recheck`` asks VIES about the numbers whose check is due."""

from __future__ import annotations

import asyncio
import sys
import types
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from fastapi_cashier import PaymentsRouter
from fastapi_cashier.cli import main
from fastapi_cashier.db.models import BillingProfile

from ..http.conftest import settings_for
from .conftest import UNCONFIRMED_FR, VALID_FR, tax_settings
from .vies_server import VIESState

pytestmark = pytest.mark.db


def test_recheck_reports_and_records_each_outcome(
    fresh_database_url: str, vies: tuple[VIESState, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    payments = PaymentsRouter(settings_for(fresh_database_url, tax=tax_settings(vies[1])))
    module = types.ModuleType("cashier_tax_host")
    module.payments = payments  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cashier_tax_host", module)

    async def save_profiles() -> None:
        async with payments.service() as svc:
            for subject, tax_id in (("alice", VALID_FR), ("bob", UNCONFIRMED_FR)):
                customer = await svc.customers.get_or_create(subject)
                await svc.customers.save_billing_profile(customer, {"country": "FR", "tax_id": tax_id})
            await svc.commit()
            await svc.session.execute(
                sa.update(BillingProfile).values(
                    tax_id_next_check_at=datetime.now(UTC) - timedelta(seconds=1)
                )
            )
            await svc.commit()
        await payments.shutdown()

    asyncio.run(save_profiles())
    result = CliRunner().invoke(main, ["tax", "recheck", "--app", "cashier_tax_host:payments"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 valid, 0 invalid, 1 unavailable"

    async def statuses() -> dict[str, str]:
        async with payments.service() as svc:
            rows = (
                await svc.session.execute(sa.select(BillingProfile.tax_id, BillingProfile.tax_id_status))
            ).all()
        await payments.shutdown()
        return {tax_id: status.value for tax_id, status in rows}

    assert asyncio.run(statuses()) == {VALID_FR: "valid", UNCONFIRMED_FR.replace(" ", ""): "unverified"}
