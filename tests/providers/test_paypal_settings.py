"""The PayPal settings section, from PAYMENTS_PAYPAL__* variables alone."""

from __future__ import annotations

import os
from pathlib import Path

import pydantic
import pytest

from fastapi_cashier.settings import PaymentsSettings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYMENTS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_the_section_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_PAYPAL__CLIENT_ID", "AeA1QIZXiflr1_-r0U2UbWTziOWX1GRQer5")
    monkeypatch.setenv("PAYMENTS_PAYPAL__CLIENT_SECRET", "ECYYrrSHdKfk_Q0EdvzdGkzj58a66kKaUQ")
    monkeypatch.setenv("PAYMENTS_PAYPAL__WEBHOOK_ID", "8PT597110X687430LKGECATA")
    monkeypatch.setenv("PAYMENTS_PAYPAL__MODE", "live")
    monkeypatch.setenv("PAYMENTS_PAYPAL__API_BASE", "https://paypal-sandbox.test")
    paypal = PaymentsSettings().paypal
    assert paypal is not None
    assert paypal.client_id == "AeA1QIZXiflr1_-r0U2UbWTziOWX1GRQer5"
    assert paypal.client_secret.get_secret_value() == "ECYYrrSHdKfk_Q0EdvzdGkzj58a66kKaUQ"
    assert "ECYYrrSHdKfk" not in repr(paypal)
    assert (paypal.webhook_id, paypal.mode) == ("8PT597110X687430LKGECATA", "live")
    assert str(paypal.api_base) == "https://paypal-sandbox.test/"


def test_defaults_and_refusals() -> None:
    paypal = PaymentsSettings(paypal={"client_id": "id", "client_secret": "secret"}).paypal
    assert paypal is not None
    assert (paypal.mode, paypal.api_base, paypal.webhook_id) == ("sandbox", None, None)
    with pytest.raises(pydantic.ValidationError, match="mode"):
        PaymentsSettings(paypal={"client_id": "id", "client_secret": "secret", "mode": "production"})
    with pytest.raises(pydantic.ValidationError, match="api_base"):
        PaymentsSettings(paypal={"client_id": "id", "client_secret": "secret", "api_base": "not a url"})
