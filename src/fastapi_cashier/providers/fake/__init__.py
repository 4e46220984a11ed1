"""The fake provider: in-process, no network; for tests, demos, and as the template for new adapters.

- :mod:`.provider`: :class:`FakeProvider`, the adapter (checkout and refunds in ``_hosted``,
  subscriptions and invoices in ``_billing``);
- :mod:`.state`: the in-memory records;
- :mod:`.wire`: the signed event envelope (:func:`~.wire.encode_event`, :func:`~.wire.sign_headers`),
  for tests that deliver events by hand;
- ``_pages`` and ``_routes``: its hosted pages, served under the router's prefix through the
  adapter route hook.
"""

from .provider import (
    SIGNATURE_HEADER,
    CheckoutOutcome,
    FakeCheckoutSession,
    FakeCustomer,
    FakeInvoice,
    FakePayment,
    FakeProvider,
    FakeRefund,
    FakeSubscription,
    HostedStep,
    InvoiceLine,
)

__all__ = [
    "SIGNATURE_HEADER",
    "CheckoutOutcome",
    "FakeCheckoutSession",
    "FakeCustomer",
    "FakeInvoice",
    "FakePayment",
    "FakeProvider",
    "FakeRefund",
    "FakeSubscription",
    "HostedStep",
    "InvoiceLine",
]
