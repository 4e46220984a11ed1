"""What every request and response body of the HTTP API is built from.

Amounts are ``StrictInt`` minor units: a float, a string or a bool is refused with a 422 problem
that names the field, never rounded. Currency codes are checked against ISO 4217. Every request
body derives from :class:`RequestBody` (unknown fields and NUL characters refused), every
response body from :class:`ResponseBody` (read from rows by attribute).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator

from ...currencies import normalize_currency
from ...errors import UnknownCurrencyError

__all__ = [
    "CurrencyCode",
    "Instant",
    "MinorUnits",
    "Page",
    "Reference",
    "RequestBody",
    "ResponseBody",
    "ShortText",
    "Url",
    "dump",
    "utc_representable",
]

T = TypeVar("T")


def _currency(value: str) -> str:
    try:
        return normalize_currency(value)
    except UnknownCurrencyError as exc:
        raise ValueError(exc.message) from None


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) > 2048:
        raise ValueError("must be an absolute http(s) URL of at most 2048 characters")
    return value


def utc_representable(value: datetime) -> datetime:
    """Refuse a time zone-aware timestamp that has no UTC equivalent (``0001-01-01T00:00+01:00``)."""
    if value.utcoffset() is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is out of range once converted to UTC") from None
    return value


CurrencyCode = Annotated[str, AfterValidator(_currency)]
Instant = Annotated[datetime, AfterValidator(utc_representable)]
MinorUnits = Annotated[StrictInt, Field(gt=0, le=10**15, description="Amount in minor units (cents)")]
Url = Annotated[str, AfterValidator(_http_url)]
ShortText = Annotated[str, Field(max_length=500)]
Reference = Annotated[str, Field(min_length=1, max_length=255)]


def _contains_nul(value: object) -> bool:
    """Whether a text, or any text inside a list or a mapping (keys too), contains U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


class RequestBody(BaseModel):
    """The base of every request body: unknown fields and NUL characters in text are refused.

    PostgreSQL cannot store or compare text containing U+0000 (the driver fails, the request
    would be a 500), so it is refused on every database alike, with a 422 naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if _contains_nul(value):
            raise ValueError("text must not contain NUL (U+0000) characters")
        return value


class ResponseBody(BaseModel):
    """The base of every response body: built from a row (or any object) by attribute."""

    model_config = ConfigDict(from_attributes=True)


class Page(ResponseBody, Generic[T]):
    """A page of a listing; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None


def dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    """Serialise a row through a response model (JSON mode)."""
    return model.model_validate(obj).model_dump(mode="json")
