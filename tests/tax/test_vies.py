"""The VIES client against an in-process VIES: valid, invalid, unavailable, broken, unreachable."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from fastapi_cashier.settings import VIESSettings
from fastapi_cashier.tax import VIESClient, VIESOutcome, split_vat_number

from .vies_server import VIESState, vies_app

pytestmark = pytest.mark.anyio

BASE = "http://vies.test/rest-api"


def client_for(state: VIESState, **kwargs: str) -> VIESClient:
    transport = httpx.ASGITransport(app=vies_app(state))
    return VIESClient(VIESSettings(base_url=BASE, timeout_seconds=2), transport=transport, **kwargs)


def state() -> VIESState:
    return VIESState(valid={"FR40303265045": ("SA ODIGEO", "1 RUE DE LA PAIX 75002 PARIS")})


def test_split_keeps_the_prefix_and_compacts() -> None:
    assert split_vat_number("fr 40 303 265 045") == ("FR", "40303265045")
    assert split_vat_number("EL094259216") == ("EL", "094259216")


async def test_a_registered_number_is_valid_with_the_consultation_number() -> None:
    vies = state()
    result = await client_for(vies, requester_vat_number="DE136695976").check("FR40303265045")
    assert result.outcome is VIESOutcome.VALID
    assert result.consultation_number == "WAPIAAAAZ0000001"
    assert result.checked_at == datetime(2026, 12, 6, 10, 15, tzinfo=UTC)
    assert (result.name, result.address) == ("SA ODIGEO", "1 RUE DE LA PAIX 75002 PARIS")
    assert vies.requests == [
        {
            "countryCode": "FR",
            "vatNumber": "40303265045",
            "requesterMemberStateCode": "DE",
            "requesterNumber": "136695976",
        }
    ]


async def test_without_a_requester_there_is_no_consultation_number() -> None:
    result = await client_for(state()).check("FR40303265045")
    assert result.outcome is VIESOutcome.VALID
    assert result.consultation_number is None


async def test_an_unknown_number_is_invalid_and_undisclosed_fields_are_none() -> None:
    result = await client_for(state()).check("FR12345678901")
    assert result.outcome is VIESOutcome.INVALID
    assert (result.name, result.address, result.error) == (None, None, None)


async def test_a_member_state_down_is_unavailable_not_invalid() -> None:
    vies = state()
    vies.unavailable_states.add("FR")
    result = await client_for(vies).check("FR40303265045")
    assert result.outcome is VIESOutcome.UNAVAILABLE
    assert result.error == "MS_UNAVAILABLE"
    assert result.consultation_number is None


async def test_a_server_error_is_unavailable() -> None:
    vies = state()
    vies.broken_states.add("FR")
    result = await client_for(vies).check("FR40303265045")
    assert result.outcome is VIESOutcome.UNAVAILABLE
    assert result.error == "SERVICE_UNAVAILABLE"


async def test_a_timeout_or_refused_connection_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = VIESClient(VIESSettings(base_url=BASE), transport=httpx.MockTransport(refuse))
    result = await client.check("FR40303265045")
    assert result.outcome is VIESOutcome.UNAVAILABLE
    assert result.error is not None
    assert "ConnectTimeout" in result.error


async def test_an_answer_that_is_not_json_is_unavailable() -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="<html>maintenance</html>")

    client = VIESClient(VIESSettings(base_url=BASE), transport=httpx.MockTransport(html))
    result = await client.check("FR40303265045")
    assert result.outcome is VIESOutcome.UNAVAILABLE
    assert result.error == "HTTP 503 without a JSON object"
