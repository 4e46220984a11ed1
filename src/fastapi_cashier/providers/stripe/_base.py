"""What the parts of the Stripe adapter share: the client, the capability check, JSON of SDK objects."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from ...errors import InvalidProviderRequestError, ProviderError
from ...statuses import ProrationBehavior
from ..base import Capability, PaymentProvider, unsupported
from ._errors import PROVIDER_NAME, stripe_errors
from ._objects import MalformedObjectError

if TYPE_CHECKING:
    from stripe import StripeClient

__all__ = ["StripeBase", "refused", "unix_time"]


def unix_time(moment: datetime) -> int:
    """Seconds since the epoch of an aware datetime (a naive one is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


def refused(message: str, **details: Any) -> InvalidProviderRequestError:
    """A request the adapter refuses before calling Stripe."""
    return InvalidProviderRequestError(message, provider=PROVIDER_NAME, details=details)


class StripeBase:
    """State and helpers of :class:`~fastapi_cashier.providers.stripe.StripeProvider`'s parts."""

    name: str = PROVIDER_NAME
    capabilities: frozenset[Capability]
    #: Every mutating call carries an ``Idempotency-Key``.
    idempotency_keys: bool = True
    proration_behaviors: frozenset[ProrationBehavior] = frozenset(ProrationBehavior)
    _client: StripeClient

    @property
    def client(self) -> StripeClient:
        """The ``stripe.StripeClient`` the provider calls, for Stripe features the protocol lacks.

        Use its ``*_async`` methods, inside :func:`stripe_errors` to get the library's errors.
        """
        return self._client

    def _require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            unsupported(cast("PaymentProvider", self), capability)

    @contextmanager
    def _calling(self, operation: str) -> Iterator[None]:
        """Translate SDK errors, and a response the readers cannot use, into provider errors."""
        try:
            with stripe_errors(operation):
                yield
        except MalformedObjectError as exc:
            raise ProviderError(
                f"Stripe answered an attempt to {operation} with an object the adapter cannot read: {exc}",
                provider=PROVIDER_NAME,
            ) from exc

    @staticmethod
    def _json(obj: Any) -> dict[str, Any]:
        """An SDK object as the JSON Stripe sent (the shape webhooks carry)."""
        return cast("dict[str, Any]", obj.to_dict(for_json=True))
