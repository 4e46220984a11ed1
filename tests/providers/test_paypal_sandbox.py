"""The PayPal sandbox answers in the shapes of PayPal's OpenAPI documents, through the library's client.

What the tests of the adapter rely on is checked here against ``../shared/provider-specs/paypal``:
every object the sandbox answers (orders, captures, refunds, products, plans, subscriptions,
revisions, webhook events), and the sandbox's behaviour (request ids, hosted approval, renewals,
signatures).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fastapi_cashier.errors import InvalidProviderRequestError, PaymentDeclinedError, ProviderConnectionError
from fastapi_cashier.providers.paypal import PayPalClient

from .paypal_sandbox import Fault, PayPalSandbox, verify_with_certificate
from .paypal_spec import assert_matches

pytestmark = pytest.mark.anyio


def link(obj: dict[str, object], rel: str) -> str:
    links = obj["links"]
    assert isinstance(links, list)
    return next(item["href"] for item in links if item["rel"] == rel)


async def click(paypal_client: PayPalClient, url: str, action: str) -> httpx.Response:
    """Open the hosted page at ``url`` and press the button ``action``, as a payer would."""
    page = await paypal_client.http.get(url)
    assert page.status_code == 200
    assert f'value="{action}"' in page.text
    form_action = page.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
    return await paypal_client.http.post(form_action, data={"action": action})


ORDER = {
    "intent": "CAPTURE",
    "purchase_units": [
        {
            "reference_id": "default",
            "custom_id": "cs_5b0c",
            "invoice_id": "cs_5b0c",
            "description": "Booking 42",
            "amount": {"currency_code": "EUR", "value": "43.59"},
        }
    ],
    "payment_source": {
        "paypal": {
            "experience_context": {
                "return_url": "https://shop.example/billing/paypal/return",
                "cancel_url": "https://shop.example/cancel",
                "user_action": "PAY_NOW",
            }
        }
    },
}


async def test_order_create_approve_capture_refund(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    assert_matches("checkout_orders_v2", "order_request", ORDER)
    order = await paypal_client.post(
        "/v2/checkout/orders", operation="create", request_id="checkout-1", json=ORDER
    )
    assert_matches("checkout_orders_v2", "order", order)
    assert order["status"] == "PAYER_ACTION_REQUIRED"

    redirect = await click(paypal_client, link(order, "payer-action"), "approve")
    assert redirect.status_code == 303
    target = urlsplit(redirect.headers["location"])
    assert target.path == "/billing/paypal/return"
    assert parse_qs(target.query)["token"] == [order["id"]]
    approved = paypal_sandbox.sent_events[-1]
    assert json.loads(approved[1])["event_type"] == "CHECKOUT.ORDER.APPROVED"

    captured = await paypal_client.post(
        f"/v2/checkout/orders/{order['id']}/capture", operation="capture", request_id="capture-1"
    )
    assert_matches("checkout_orders_v2", "order", captured)
    capture = captured["purchase_units"][0]["payments"]["captures"][0]
    assert capture["status"] == "COMPLETED"
    assert capture["custom_id"] == "cs_5b0c"
    # The same request id is answered with the first answer; the order is captured once.
    again = await paypal_client.post(
        f"/v2/checkout/orders/{order['id']}/capture", operation="capture", request_id="capture-1"
    )
    assert again == captured
    assert len(paypal_sandbox.state.captures) == 1
    # Another request id is refused as PayPal does.
    with pytest.raises(InvalidProviderRequestError) as caught:
        await paypal_client.post(
            f"/v2/checkout/orders/{order['id']}/capture", operation="capture", request_id="other"
        )
    assert caught.value.provider_code == "ORDER_ALREADY_CAPTURED"

    fetched = await paypal_client.get(f"/v2/payments/captures/{capture['id']}", operation="read")
    assert_matches("payments_payment_v2", "capture", fetched)

    partial = {"amount": {"currency_code": "EUR", "value": "10.00"}, "invoice_id": "refund-1"}
    assert_matches("payments_payment_v2", "refund_request", partial)
    refund = await paypal_client.post(
        f"/v2/payments/captures/{capture['id']}/refund",
        operation="refund",
        request_id="refund-1",
        json=partial,
    )
    assert_matches("payments_payment_v2", "refund", refund)
    assert refund["amount"]["value"] == "10.00"
    rest = await paypal_client.post(
        f"/v2/payments/captures/{capture['id']}/refund", operation="refund", request_id="refund-2", json={}
    )
    assert rest["amount"]["value"] == "33.59"
    assert (await paypal_client.get(f"/v2/payments/captures/{capture['id']}", operation="read"))[
        "status"
    ] == "REFUNDED"
    with pytest.raises(InvalidProviderRequestError) as caught:
        await paypal_client.post(
            f"/v2/payments/captures/{capture['id']}/refund", operation="refund", request_id="refund-3"
        )
    assert caught.value.provider_code == "CAPTURE_FULLY_REFUNDED"
    events = [json.loads(body)["event_type"] for _, body in paypal_sandbox.sent_events]
    assert events == [
        "CHECKOUT.ORDER.APPROVED",
        "PAYMENT.CAPTURE.COMPLETED",
        "PAYMENT.CAPTURE.REFUNDED",
        "PAYMENT.CAPTURE.REFUNDED",
    ]
    for headers, body in paypal_sandbox.sent_events:
        assert_matches("notifications_webhooks_v1", "event", json.loads(body))
        assert verify_with_certificate(headers, body, paypal_sandbox.webhook_id, paypal_sandbox)
        assert not verify_with_certificate(headers, body + b" ", paypal_sandbox.webhook_id, paypal_sandbox)


async def test_declined_and_pending_captures(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    declined = await paypal_client.post(
        "/v2/checkout/orders", operation="create", request_id="c-1", json=ORDER
    )
    await click(paypal_client, link(declined, "payer-action"), "approve_declined")
    with pytest.raises(PaymentDeclinedError) as caught:
        await paypal_client.post(
            f"/v2/checkout/orders/{declined['id']}/capture", operation="capture", request_id="k-1"
        )
    assert caught.value.provider_code == "INSTRUMENT_DECLINED"

    pending = await paypal_client.post(
        "/v2/checkout/orders", operation="create", request_id="c-2", json=ORDER
    )
    await click(paypal_client, link(pending, "payer-action"), "approve_echeck")
    captured = await paypal_client.post(
        f"/v2/checkout/orders/{pending['id']}/capture", operation="capture", request_id="k-2"
    )
    capture = captured["purchase_units"][0]["payments"]["captures"][0]
    assert (capture["status"], capture["status_details"]["reason"]) == ("PENDING", "ECHECK")
    await paypal_sandbox.complete_pending_capture(capture["id"])
    assert (await paypal_client.get(f"/v2/payments/captures/{capture['id']}", operation="read"))[
        "status"
    ] == "COMPLETED"
    assert [json.loads(body)["event_type"] for _, body in paypal_sandbox.sent_events][-2:] == [
        "PAYMENT.CAPTURE.PENDING",
        "PAYMENT.CAPTURE.COMPLETED",
    ]


async def test_an_unapproved_order_cannot_be_captured(paypal_client: PayPalClient) -> None:
    order = await paypal_client.post("/v2/checkout/orders", operation="create", request_id="c-1", json=ORDER)
    with pytest.raises(InvalidProviderRequestError) as caught:
        await paypal_client.post(
            f"/v2/checkout/orders/{order['id']}/capture", operation="capture", request_id="k-1"
        )
    assert caught.value.provider_code == "ORDER_NOT_APPROVED"


@pytest.mark.parametrize("kind", ["500", "reset"])
async def test_faults_then_the_same_request_id_captures_once(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient, kind: str
) -> None:
    order = await paypal_client.post("/v2/checkout/orders", operation="create", request_id="c-1", json=ORDER)
    await click(paypal_client, link(order, "payer-action"), "approve")
    paypal_sandbox.state.faults.append(Fault("POST", "/capture", kind))
    with pytest.raises(ProviderConnectionError):
        await paypal_client.post(
            f"/v2/checkout/orders/{order['id']}/capture", operation="capture", request_id="k-1"
        )
    assert len(paypal_sandbox.state.captures) == (1 if kind == "reset" else 0)
    captured = await paypal_client.post(
        f"/v2/checkout/orders/{order['id']}/capture", operation="capture", request_id="k-1"
    )
    assert captured["status"] == "COMPLETED"
    assert len(paypal_sandbox.state.captures) == 1
    captures = [call for call in paypal_sandbox.state.calls if call[1].endswith("/capture")]
    assert captures == [("POST", f"/v2/checkout/orders/{order['id']}/capture", "k-1")] * 2


async def test_an_expired_token_is_replaced(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    await paypal_client.post("/v2/checkout/orders", operation="create", request_id="c-1", json=ORDER)
    paypal_sandbox.state.expire_tokens()
    await paypal_client.post("/v2/checkout/orders", operation="create", request_id="c-2", json=ORDER)
    assert paypal_client.tokens_fetched == 2


PRODUCT = {"name": "Team plan", "description": "Seats for a team", "type": "SERVICE", "category": "SOFTWARE"}


def plan_request(product_id: str) -> dict[str, object]:
    return {
        "product_id": product_id,
        "name": "Team monthly",
        "status": "ACTIVE",
        "quantity_supported": True,
        "billing_cycles": [
            {
                "frequency": {"interval_unit": "DAY", "interval_count": 14},
                "tenure_type": "TRIAL",
                "sequence": 1,
                "total_cycles": 1,
                "pricing_scheme": {"fixed_price": {"currency_code": "USD", "value": "0.00"}},
            },
            {
                "frequency": {"interval_unit": "MONTH", "interval_count": 1},
                "tenure_type": "REGULAR",
                "sequence": 2,
                "total_cycles": 0,
                "pricing_scheme": {
                    "pricing_model": "TIERED",
                    "tiers": [
                        {
                            "starting_quantity": "1",
                            "ending_quantity": "5",
                            "amount": {"currency_code": "USD", "value": "10.00"},
                        },
                        {"starting_quantity": "6", "amount": {"currency_code": "USD", "value": "8.00"}},
                    ],
                },
            },
        ],
        "payment_preferences": {"auto_bill_outstanding": True, "payment_failure_threshold": 3},
    }


async def test_catalog_and_a_subscription_lifecycle(
    paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient
) -> None:
    assert_matches("catalogs_products_v1", "product_request_POST", PRODUCT)
    product = await paypal_client.post(
        "/v1/catalogs/products", operation="create", request_id="product-1", json=PRODUCT
    )
    assert_matches("catalogs_products_v1", "product", product)
    patch = [{"op": "replace", "path": "/description", "value": "Seats"}]
    assert_matches("catalogs_products_v1", "patch_request", patch)
    await paypal_client.patch(
        f"/v1/catalogs/products/{product['id']}", operation="update", request_id="p-2", json=patch
    )
    assert (await paypal_client.get(f"/v1/catalogs/products/{product['id']}", operation="read"))[
        "description"
    ] == "Seats"

    body = plan_request(product["id"])
    assert_matches("billing_subscriptions_v1", "plan_request_POST", body)
    plan = await paypal_client.post("/v1/billing/plans", operation="create", request_id="plan-1", json=body)
    assert_matches("billing_subscriptions_v1", "plan", plan)

    request = {
        "plan_id": plan["id"],
        "quantity": "7",
        "custom_id": "sub_7f3a",
        "application_context": {
            "return_url": "https://shop.example/ok",
            "cancel_url": "https://shop.example/no",
        },
    }
    assert_matches("billing_subscriptions_v1", "subscription_request_post", request)
    sub = await paypal_client.post(
        "/v1/billing/subscriptions", operation="create", request_id="sub-1", json=request
    )
    assert_matches("billing_subscriptions_v1", "subscription", sub)
    assert sub["status"] == "APPROVAL_PENDING"
    redirect = await click(paypal_client, link(sub, "approve"), "approve")
    assert parse_qs(urlsplit(redirect.headers["location"]).query)["subscription_id"] == [sub["id"]]
    active = await paypal_client.get(f"/v1/billing/subscriptions/{sub['id']}", operation="read")
    assert_matches("billing_subscriptions_v1", "subscription", active)
    assert active["status"] == "ACTIVE"

    await paypal_sandbox.advance(14 * 86400)  # the trial ends: the first regular cycle is billed
    sale = json.loads(paypal_sandbox.sent_events[-1][1])
    assert sale["event_type"] == "PAYMENT.SALE.COMPLETED"
    assert sale["resource"]["amount"]["total"] == "66.00"  # 5 x 10.00 + 2 x 8.00
    assert sale["resource"]["billing_agreement_id"] == sub["id"]
    assert sale["resource"]["custom"] == "sub_7f3a"

    revision = {
        "quantity": "2",
        "application_context": {
            "return_url": "https://shop.example/revised",
            "cancel_url": "https://shop.example/no",
        },
    }
    assert_matches("billing_subscriptions_v1", "subscription_revise_request", revision)
    revised = await paypal_client.post(
        f"/v1/billing/subscriptions/{sub['id']}/revise", operation="revise", request_id="r-1", json=revision
    )
    assert_matches("billing_subscriptions_v1", "subscription_revise_response", revised)
    unchanged = await paypal_client.get(f"/v1/billing/subscriptions/{sub['id']}", operation="read")
    assert unchanged["quantity"] == "7"  # pending until the subscriber approves
    await click(paypal_client, link(revised, "approve"), "approve")
    assert (await paypal_client.get(f"/v1/billing/subscriptions/{sub['id']}", operation="read"))[
        "quantity"
    ] == "2"

    for action, status in (("suspend", "SUSPENDED"), ("activate", "ACTIVE"), ("cancel", "CANCELLED")):
        reason = {"reason": f"{action} requested"}
        assert_matches("billing_subscriptions_v1", f"subscription_{action}_request", reason)
        answer = await paypal_client.post(
            f"/v1/billing/subscriptions/{sub['id']}/{action}",
            operation=action,
            request_id=f"{action}-1",
            json=reason,
        )
        assert answer == {}
        assert (await paypal_client.get(f"/v1/billing/subscriptions/{sub['id']}", operation="read"))[
            "status"
        ] == status
    with pytest.raises(InvalidProviderRequestError) as caught:
        await paypal_client.post(
            f"/v1/billing/subscriptions/{sub['id']}/suspend",
            operation="suspend",
            request_id="s-2",
            json={"reason": "x"},
        )
    assert caught.value.provider_code == "SUBSCRIPTION_STATUS_INVALID"

    kinds = [json.loads(body)["event_type"] for _, body in paypal_sandbox.sent_events]
    assert kinds == [
        "BILLING.SUBSCRIPTION.CREATED",
        "BILLING.SUBSCRIPTION.ACTIVATED",
        "PAYMENT.SALE.COMPLETED",
        "BILLING.SUBSCRIPTION.UPDATED",
        "BILLING.SUBSCRIPTION.SUSPENDED",
        "BILLING.SUBSCRIPTION.ACTIVATED",
        "BILLING.SUBSCRIPTION.CANCELLED",
    ]
    for headers, body in paypal_sandbox.sent_events:
        event = json.loads(body)
        assert_matches("notifications_webhooks_v1", "event", event)
        if event["resource_type"] == "subscription":
            assert_matches("billing_subscriptions_v1", "subscription", event["resource"])
        assert verify_with_certificate(headers, body, paypal_sandbox.webhook_id, paypal_sandbox)


async def test_the_verification_postback(paypal_sandbox: PayPalSandbox, paypal_client: PayPalClient) -> None:
    headers, body = await paypal_sandbox.emit("PAYMENT.CAPTURE.COMPLETED", "capture", {"id": "1"}, "done")
    request = {
        "auth_algo": headers["PAYPAL-AUTH-ALGO"],
        "cert_url": headers["PAYPAL-CERT-URL"],
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "webhook_id": paypal_sandbox.webhook_id,
        "webhook_event": json.loads(body),
    }
    assert_matches("notifications_webhooks_v1", "verify_webhook_signature", request)
    path = "/v1/notifications/verify-webhook-signature"
    answer = await paypal_client.post(path, operation="verify", request_id="v-1", json=request)
    assert_matches("notifications_webhooks_v1", "verify_webhook_signature_response", answer)
    assert answer == {"verification_status": "SUCCESS"}
    tampered = {**request, "webhook_event": {**json.loads(body), "summary": "changed"}}
    assert (await paypal_client.post(path, operation="verify", request_id="v-2", json=tampered))[
        "verification_status"
    ] == "FAILURE"
    other = {**request, "webhook_id": "SOMEONE-ELSE"}
    assert (await paypal_client.post(path, operation="verify", request_id="v-3", json=other))[
        "verification_status"
    ] == "FAILURE"
