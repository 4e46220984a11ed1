"""Every object the hand-written Stripe stub answers has the shape of Stripe's own example objects.

Stripe publishes an example of each API object (``fixtures3.json`` of its OpenAPI repository, in
``../shared/provider-specs/stripe/``). The stub is driven through the contract suite's operations
(every route it serves) and each JSON object in its answers and events is compared with the
example of the same ``object`` type: every field the stub sends must exist there with the same
JSON type, recursively. ``null`` matches any type (the examples leave optional fields empty, the
stub fills some the examples leave empty), and an expandable field may be an id or the object.
Skipped when ``../shared`` is absent.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from fastapi_cashier.money import Money
from fastapi_cashier.providers.base import CustomerRef, PortalRequest, UsageReport
from fastapi_cashier.statuses import PricingModel

from .contract import Clock, checkout_request, plan, refund_request, synced
from .stripe_stub import StripeStub
from .test_contract_stripe import StripeHarness

FIXTURES = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "provider-specs" / "stripe" / "fixtures3.json"
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not FIXTURES.exists(), reason="../shared/provider-specs is not in this checkout"),
]

Json = dict[str, Any]

#: Fields of Stripe's API that its examples leave out because they exist only for one variant of
#: a sum type: the member named by ``type`` (``{"type": "payment_intent", "payment_intent": ...}``).
CONDITIONAL = frozenset(
    {
        "invoice_payment.payment.payment_intent: not a field of Stripe's object",
        "line_item.pricing.price_details: not a field of Stripe's object",
    }
)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def differences(answered: Any, example: Any, path: str) -> list[str]:
    """Where ``answered`` departs from the shape of ``example``."""
    got, want = _kind(answered), _kind(example)
    if "null" in (got, want):
        return []
    if got == "object" and want == "string":
        # An expandable field: the example has the id, the stub was asked to expand it.
        return [] if isinstance(answered.get("id"), str) else [f"{path}: an expanded object without an id"]
    if got != want:
        return [f"{path}: {got}, Stripe sends {want}"]
    if got == "object":
        found: list[str] = []
        if path.endswith(".metadata"):
            return []  # free-form: the keys are the caller's
        if path == "event.data.object" or (isinstance(answered.get("object"), str) and path.count(".") > 0):
            return []  # an object of its own type inside another: compared with its own example
        for key, value in answered.items():
            if key not in example:
                found.append(f"{path}.{key}: not a field of Stripe's object")
            else:
                found += differences(value, example[key], f"{path}.{key}")
        return found
    if got == "array" and answered and example:
        return [problem for item in answered for problem in differences(item, example[0], f"{path}[]")]
    return []


class Recorder:
    """Wraps the stub's transport and keeps every JSON object it answers."""

    def __init__(self, stub: StripeStub) -> None:
        self.stub = stub
        self.answers: list[Json] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        response = self.stub.handle(request)
        body = json.loads(response.content)
        if response.status_code < 400:
            self.answers.append(body)
        return response


@pytest.fixture
async def driven() -> tuple[StripeStub, Recorder]:
    """The stub after every route it serves was used once through the Stripe adapter."""
    clock = Clock()
    stub = StripeStub(clock=lambda: clock.unix)
    recorder = Recorder(stub)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder.handle)) as client:
        harness = StripeHarness(client, stub, clock)
        provider = harness.provider
        customer = await provider.create_customer(
            checkout_request(clock).customer, idempotency_key="customer-shapes"
        )
        payment_id = await harness.paid_payment(Money(1000, "EUR"))
        refund = await provider.refund(refund_request(payment_id, 300))
        assert refund.provider_refund_id is not None
        await provider.fetch("refund", refund.provider_refund_id)
        await provider.fetch("payment", payment_id)
        seats = await synced(provider, plan(1500))
        subscription_id = await harness.active_subscription(seats, quantity=2)
        subscription = await provider.fetch("subscription", subscription_id)
        await provider.pause_subscription(subscription_id, idempotency_key="pause-shapes")
        await provider.resume_subscription(subscription_id, idempotency_key="resume-shapes")
        await provider.cancel_subscription(subscription_id, at_period_end=True, idempotency_key="end-shapes")
        invoices = [o["id"] for o in stub.objects.values() if o["object"] == "invoice"]
        for invoice_id in invoices:
            await provider.fetch("invoice", invoice_id)
        metered = await synced(
            provider, plan(3, id=uuid.UUID(int=44), name="Calls", pricing_model=PricingModel.METERED)
        )
        metered_id = await harness.active_subscription(metered)
        await provider.report_usage(
            UsageReport(
                subscription_id=uuid.uuid4(),
                provider_subscription_id=metered_id,
                quantity=4,
                idempotency_key="usage-shapes",
                recorded_at=clock(),
            )
        )
        await provider.cancel_subscription(metered_id, at_period_end=False, idempotency_key="now-shapes")
        await provider.create_portal_session(
            PortalRequest(
                customer=CustomerRef(id=uuid.uuid4(), external_id="user-8", provider_customer_id=customer),
                return_url="https://shop.example/account",
                provider_subscription_id=subscription.provider_subscription_id,
            )
        )
        await provider.aclose()
    return stub, recorder


def _objects(value: Any) -> list[Json]:
    """Every JSON object with an ``object`` type inside ``value``, outermost first."""
    found: list[Json] = []
    if isinstance(value, dict):
        if isinstance(value.get("object"), str) and value["object"] != "list":
            found.append(value)
        for item in value.values():
            found += _objects(item)
    elif isinstance(value, list):
        for item in value:
            found += _objects(item)
    return found


async def test_every_object_the_stub_answers_has_the_fields_and_types_of_stripes_examples(
    driven: tuple[StripeStub, Recorder],
) -> None:
    stub, recorder = driven
    examples: dict[str, Json] = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    answered = _objects(recorder.answers) + _objects(stub.events)
    kinds = {obj["object"] for obj in answered}

    assert {
        "customer",
        "checkout.session",
        "payment_intent",
        "refund",
        "subscription",
        "invoice",
        "event",
    } <= kinds
    problems = [
        problem for obj in answered for problem in differences(obj, examples[obj["object"]], obj["object"])
    ]
    assert "\n".join(sorted(set(problems) - CONDITIONAL)) == ""


def test_the_comparison_finds_an_unknown_field_and_a_wrong_type() -> None:
    example = {"object": "refund", "amount": 100, "charge": "ch_1", "metadata": {}}
    assert differences({"object": "refund", "amount": "100"}, example, "refund") == [
        "refund.amount: string, Stripe sends number"
    ]
    assert differences({"object": "refund", "amunt": 1}, example, "refund") == [
        "refund.amunt: not a field of Stripe's object"
    ]
    assert (
        differences(
            {"object": "refund", "charge": {"id": "ch_1"}, "metadata": {"any": "key"}}, example, "refund"
        )
        == []
    )
