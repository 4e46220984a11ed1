"""Subscriptions at PayPal: Billing Subscriptions v1.

* Create: a subscription on the plan's PayPal plan with the quantity (when the plan takes one)
  and the local ids in ``custom_id``; the subscriber approves it at its ``approve`` link.
* Change plan or quantity: ``revise``, which PayPal answers with an ``approve`` link: the
  subscriber must approve again, so the change stays pending until
  ``BILLING.SUBSCRIPTION.UPDATED`` (or the re-read subscription) shows it.
* VAT: the library's rate (:class:`~fastapi_cashier.providers.base.TaxRateRef`) goes in an
  inline plan override, ``plan.taxes = {"percentage": "19", "inclusive": false}``, on create and
  on every revise (PayPal does not carry an override forward through a revise). With
  ``inclusive: false`` PayPal adds the tax to each billing amount, so it charges the invoice's
  gross. A change of the rate alone (the buyer's terms changed) is a ``PATCH`` of
  ``plan.taxes.percentage`` and ``plan.taxes.inclusive``, which needs no approval of the
  subscriber and applies from the next billing cycle.
* Cancel: ``cancel`` ends it now; PayPal has no cancel at period end (the library keeps that
  locally and cancels when the period ends).
* Pause and resume: ``suspend`` and ``activate``.

Each call is followed by a read of the subscription, whose snapshot is returned. PayPal answers
``suspend``/``activate``/``cancel`` with 204 and honours no request id on them; repeating one
on a subscription already in the target state is answered ``SUBSCRIPTION_STATUS_INVALID``, which
is taken as done when the re-read shows the target state.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from ...errors import InvalidProviderRequestError, ProviderError
from ...statuses import PricingModel, SubscriptionStatus
from ..base import CheckoutRequest, SubscriptionSnapshot, TaxRateRef
from ._client import PayPalClient
from ._errors import PROVIDER_NAME
from ._objects import MalformedObjectError, encode_local_ids, link, subscription_snapshot

__all__ = [
    "create_subscription",
    "fetch_subscription",
    "move_subscription",
    "patch_subscription_tax",
    "revise_request",
    "revise_subscription",
    "tax_patch",
    "tax_percentage",
    "taxes_override",
]

Move = Literal["cancel", "suspend", "activate"]

_TARGET: Final[dict[str, SubscriptionStatus]] = {
    "cancel": SubscriptionStatus.CANCELED,
    "suspend": SubscriptionStatus.PAUSED,
    "activate": SubscriptionStatus.ACTIVE,
}


def tax_percentage(tax: TaxRateRef) -> str:
    """The rate as PayPal's ``percentage``: a fixed-point decimal string (``"19"``, ``"5.5"``)."""
    if tax.rate < 0:
        raise InvalidProviderRequestError(
            f"a VAT rate cannot be negative ({tax.rate})", provider=PROVIDER_NAME
        )
    return f"{tax.rate.normalize():f}"


def taxes_override(tax: TaxRateRef) -> dict[str, Any]:
    """The inline ``plan`` override that makes PayPal charge ``tax`` (see the module docstring)."""
    return {"taxes": {"percentage": tax_percentage(tax), "inclusive": tax.inclusive}}


def subscription_request(request: CheckoutRequest) -> dict[str, Any]:
    """The ``POST /v1/billing/subscriptions`` body of a subscription checkout."""
    plan = request.plan
    if plan is None or not plan.provider_price_id:
        raise InvalidProviderRequestError(
            "the plan is not synced to PayPal yet: run the catalog sync first", provider=PROVIDER_NAME
        )
    body: dict[str, Any] = {
        "plan_id": plan.provider_price_id,
        "custom_id": encode_local_ids(
            {"checkout_session_id": request.session_id, "customer_id": request.customer.id}
        ),
        "application_context": {
            "return_url": request.success_url,
            "cancel_url": request.cancel_url,
            "user_action": "SUBSCRIBE_NOW",
            "shipping_preference": "NO_SHIPPING",
        },
    }
    if plan.pricing_model is not PricingModel.FLAT:
        body["quantity"] = str(request.quantity)
    elif request.quantity != 1:
        raise InvalidProviderRequestError(
            f"plan {plan.name!r} has a flat price: PayPal takes no quantity for it", provider=PROVIDER_NAME
        )
    if request.customer.email:
        body["subscriber"] = {"email_address": request.customer.email}
    if request.tax is not None:
        body["plan"] = taxes_override(request.tax)
    return body


def _snapshot(sub: dict[str, Any]) -> SubscriptionSnapshot:
    try:
        return subscription_snapshot(sub)
    except MalformedObjectError as exc:
        raise ProviderError(
            f"PayPal answered a subscription the adapter cannot read: {exc}", provider=PROVIDER_NAME
        ) from exc


async def create_subscription(client: PayPalClient, request: CheckoutRequest) -> tuple[str, str]:
    """Create the subscription; its id and the URL the subscriber approves it at."""
    sub = await client.post(
        "/v1/billing/subscriptions",
        operation="create the subscription",
        request_id=request.idempotency_key,
        json=subscription_request(request),
    )
    approve = link(sub, "approve")
    sub_id = sub.get("id")
    if not isinstance(sub_id, str) or approve is None:
        raise ProviderError(
            "PayPal answered the subscription without an id and approval link", provider=PROVIDER_NAME
        )
    return sub_id, approve


async def fetch_subscription(client: PayPalClient, subscription_id: str) -> SubscriptionSnapshot:
    return _snapshot(
        await client.get(f"/v1/billing/subscriptions/{subscription_id}", operation="read the subscription")
    )


def revise_request(
    *, plan_id: str | None, quantity: int | None, return_url: str, cancel_url: str, tax: TaxRateRef | None
) -> dict[str, Any]:
    """The ``POST /v1/billing/subscriptions/{id}/revise`` body."""
    body: dict[str, Any] = {"application_context": {"return_url": return_url, "cancel_url": cancel_url}}
    if plan_id is not None:
        body["plan_id"] = plan_id
    if quantity is not None:
        body["quantity"] = str(quantity)
    if tax is not None:
        body["plan"] = taxes_override(tax)
    return body


def tax_patch(tax: TaxRateRef) -> list[dict[str, Any]]:
    """The JSON Patch that sets a subscription's taxes (``PATCH /v1/billing/subscriptions/{id}``).

    ``add`` (which PayPal allows on both paths, as ``replace``) sets a member whether or not the
    subscription had taxes before (one created while tax was off, or before the library sent any).
    """
    return [
        {"op": "add", "path": "/plan/taxes/percentage", "value": tax_percentage(tax)},
        {"op": "add", "path": "/plan/taxes/inclusive", "value": tax.inclusive},
    ]


async def revise_subscription(
    client: PayPalClient,
    subscription_id: str,
    *,
    plan_id: str | None,
    quantity: int | None,
    return_url: str,
    cancel_url: str,
    request_id: str,
    tax: TaxRateRef | None = None,
) -> tuple[SubscriptionSnapshot, str | None]:
    """Ask PayPal to change plan and/or quantity; the current state and the approval URL, if any."""
    body = revise_request(
        plan_id=plan_id, quantity=quantity, return_url=return_url, cancel_url=cancel_url, tax=tax
    )
    answer = await client.post(
        f"/v1/billing/subscriptions/{subscription_id}/revise",
        operation="revise the subscription",
        request_id=request_id,
        json=body,
    )
    return await fetch_subscription(client, subscription_id), link(answer, "approve")


async def patch_subscription_tax(
    client: PayPalClient, subscription_id: str, tax: TaxRateRef, *, request_id: str
) -> SubscriptionSnapshot:
    """Set the subscription's VAT from its next billing cycle on; the subscription after it.

    ``PATCH`` is answered 204; setting the same rate twice is harmless.
    """
    await client.patch(
        f"/v1/billing/subscriptions/{subscription_id}",
        operation="set the subscription's tax",
        request_id=request_id,
        json=tax_patch(tax),
    )
    return await fetch_subscription(client, subscription_id)


async def move_subscription(
    client: PayPalClient, subscription_id: str, move: Move, *, reason: str, request_id: str
) -> SubscriptionSnapshot:
    """Cancel, suspend or activate; the subscription after it."""
    try:
        await client.post(
            f"/v1/billing/subscriptions/{subscription_id}/{move}",
            operation=f"{move} the subscription",
            request_id=request_id,
            json={"reason": reason[:128] or move},
        )
    except InvalidProviderRequestError as exc:
        if exc.provider_code != "SUBSCRIPTION_STATUS_INVALID":
            raise
        current = await fetch_subscription(client, subscription_id)
        if current.status is not _TARGET[move]:
            raise
        return current
    return await fetch_subscription(client, subscription_id)
