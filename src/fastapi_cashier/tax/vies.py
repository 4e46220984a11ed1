"""An async client for VIES, the EU's VAT number check, through its REST interface.

VIES answers for each member state from that state's own register, and a register is often
down. An unavailable answer (a timeout, a 5xx, ``MS_UNAVAILABLE`` ...) is never an error for the
customer: it is a result of its own, and the billing profile stays ``unverified`` until a later
check gets an answer. Only ``valid`` and ``invalid`` are answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from ..clock import utcnow
from ..settings import VIESSettings

__all__ = ["VIESClient", "VIESOutcome", "VIESResult", "split_vat_number", "vat_country"]

logger = logging.getLogger("fastapi_cashier")

#: ``userError`` values VIES uses when it could not answer (rather than "this number is invalid").
_UNAVAILABLE_ERRORS = frozenset(
    {
        "MS_UNAVAILABLE",
        "MS_MAX_CONCURRENT_REQ",
        "SERVICE_UNAVAILABLE",
        "TIMEOUT",
        "GLOBAL_MAX_CONCURRENT_REQ",
        "IP_BLOCKED",
    }
)


class VIESOutcome(StrEnum):
    """What one check found out."""

    VALID = "valid"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class VIESResult:
    """One check: its outcome, when it was made and VIES's consultation number (audit proof).

    Attributes:
        outcome: valid, invalid, or unavailable (no answer: check again later).
        checked_at: When the check was made (VIES's ``requestDate`` when it gave one).
        consultation_number: VIES's ``requestIdentifier``; given only when the request names
            the requester's own VAT number (the seller's).
        name: The trader's name as registered, when the member state discloses it.
        address: The trader's address as registered, when disclosed.
        error: Why there was no answer, for the log.
    """

    outcome: VIESOutcome
    checked_at: datetime
    consultation_number: str | None = None
    name: str | None = None
    address: str | None = None
    error: str | None = None


def split_vat_number(vat_number: str) -> tuple[str, str]:
    """``"FR40303265045"`` -> ``("FR", "40303265045")``; Greece keeps VIES's ``EL`` prefix."""
    compact = vat_number.replace(" ", "").replace(".", "").replace("-", "").upper()
    return compact[:2], compact[2:]


def vat_country(vat_number: str) -> str:
    """The ISO country of an EU VAT number's prefix (``EL`` is Greece, ``GR``)."""
    prefix = vat_number.strip()[:2].upper()
    return "GR" if prefix == "EL" else prefix


class VIESClient:
    """Checks VAT numbers against VIES (``POST {base_url}/check-vat-number``).

    Args:
        settings: Address and timeout.
        requester_vat_number: The seller's own VAT number; VIES then returns a consultation
            number that proves the check was made.
        transport: An httpx transport (tests); the network otherwise.
    """

    def __init__(
        self,
        settings: VIESSettings,
        *,
        requester_vat_number: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.requester_vat_number = requester_vat_number
        self._transport = transport

    async def check(self, vat_number: str) -> VIESResult:
        """Ask VIES about ``vat_number``; never raises for VIES's own faults (see the module doc)."""
        country, number = split_vat_number(vat_number)
        body: dict[str, Any] = {"countryCode": country, "vatNumber": number}
        if self.requester_vat_number:
            requester_country, requester_number = split_vat_number(self.requester_vat_number)
            body["requesterMemberStateCode"] = requester_country
            body["requesterNumber"] = requester_number
        url = str(self.settings.base_url).rstrip("/") + "/check-vat-number"
        try:
            async with httpx.AsyncClient(
                timeout=self.settings.timeout_seconds, transport=self._transport
            ) as client:
                response = await client.post(url, json=body, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            return self._unavailable(vat_number, f"{type(exc).__name__}: {exc}")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return self._unavailable(vat_number, f"HTTP {response.status_code} without a JSON object")
        error = _error_of(payload)
        if response.status_code >= 400 or error in _UNAVAILABLE_ERRORS:
            return self._unavailable(vat_number, error or f"HTTP {response.status_code}")
        valid = payload.get("valid")
        if not isinstance(valid, bool):
            return self._unavailable(vat_number, error or "the answer has no 'valid' field")
        return VIESResult(
            outcome=VIESOutcome.VALID if valid else VIESOutcome.INVALID,
            checked_at=_request_date(payload.get("requestDate")),
            consultation_number=_text(payload.get("requestIdentifier")),
            name=_text(payload.get("name")),
            address=_text(payload.get("address")),
        )

    @staticmethod
    def _unavailable(vat_number: str, error: str) -> VIESResult:
        logger.warning(
            "VIES could not check %s: %s; it is checked again later", vat_number[:4] + "...", error
        )
        return VIESResult(VIESOutcome.UNAVAILABLE, utcnow(), error=error[:200])


def _error_of(payload: dict[str, Any]) -> str | None:
    user_error = payload.get("userError")
    if isinstance(user_error, str) and user_error not in {"VALID", "INVALID"}:
        return user_error
    wrappers = payload.get("errorWrappers")
    if isinstance(wrappers, list) and wrappers and isinstance(wrappers[0], dict):
        return str(wrappers[0].get("error") or "error")
    return None


def _text(value: object) -> str | None:
    # VIES writes "---" where a member state does not disclose a field.
    if not isinstance(value, str) or not value.strip() or value.strip() == "---":
        return None
    return value.strip()[:500]


def _request_date(value: object) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return utcnow()
