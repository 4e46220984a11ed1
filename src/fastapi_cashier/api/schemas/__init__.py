"""Request and response bodies of the HTTP API, one module per area.

Every request body derives from :class:`RequestBody` (unknown fields and NUL characters refused
with a 422 naming the field), every response body from :class:`ResponseBody`.
"""

from ._base import (
    CurrencyCode,
    Instant,
    MinorUnits,
    Page,
    Reference,
    RequestBody,
    ResponseBody,
    ShortText,
    Url,
    dump,
    utc_representable,
)

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
