"""A small, stateful stand-in for the Stripe API, served through ``httpx.MockTransport``.

It covers what ``localstripe`` does not (Prices, Products, Billing Meters and meter events,
Checkout Sessions, the Billing Portal, subscription updates, invoice payments) and answers with
the object shapes of Stripe's API reference for the pinned API version: current periods on
subscription items, ``parent.subscription_details`` on invoices, ``pricing`` on invoice lines,
invoice payments instead of ``invoice.payment_intent``. Like Stripe it honours ``Idempotency-Key``
(same key and parameters: the first response again; other parameters: an ``idempotency_error``),
answers unknown ids with ``resource_missing``, and signs the events it emits with the SDK's own
helper. Tests drive the hosted pages with :meth:`StripeStub.complete_checkout`.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import stripe

Json = dict[str, Any]


@dataclass
class Recorded:
    """One request the stub received."""

    method: str
    path: str
    params: Json
    headers: httpx.Headers


class StripeError(Exception):
    """An error answer: ``{"error": {...}}`` with an HTTP status."""

    def __init__(self, status: int, message: str, **error: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = {"type": "invalid_request_error", "message": message, **error}


def decode_form(pairs: list[tuple[str, str]]) -> Json:
    """Stripe's form encoding (``items[0][price]=p``) back into nested dicts and lists."""
    root: Json = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head, *re.findall(r"([^\[\]]*)\]", "[" + rest)] if rest else [head]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    decoded: Json = _listify(root)
    return decoded


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _flag(value: Any) -> bool:
    return value in (True, "true")


def _missing(kind: str, object_id: str) -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")


@dataclass
class StripeStub:
    """The stub's state; ``transport`` is what a provider's ``httpx.AsyncClient`` is given."""

    clock: Callable[[], int] = field(default=lambda: int(time.time()))
    objects: dict[str, Json] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    events: list[Json] = field(default_factory=list)
    meter_events: list[Json] = field(default_factory=list)
    failures: list[StripeError | Exception] = field(default_factory=list)
    refused_currencies: set[str] = field(default_factory=set)
    _idempotent: dict[str, tuple[str, int, Json]] = field(default_factory=dict)
    _checkout_extras: dict[str, Json] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        """The requests with this method whose path matches ``path`` (a regular expression)."""
        return [r for r in self.requests if r.method == method and re.fullmatch(path, r.path)]

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_test{next(self._ids):08d}"

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            params = decode_form(parse_qsl(request.content.decode(), keep_blank_values=True))
        else:
            params = decode_form(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        self.requests.append(Recorded(request.method, request.url.path, params, request.headers))
        if self.failures:
            failure = self.failures.pop(0)
            if not isinstance(failure, StripeError):
                raise failure
            return httpx.Response(failure.status, json={"error": failure.error})
        key = request.headers.get("Idempotency-Key")
        fingerprint = json.dumps([request.method, request.url.path, params], sort_keys=True)
        if key and request.method in ("POST", "DELETE") and key in self._idempotent:
            seen, status, body = self._idempotent[key]
            if seen != fingerprint:
                return httpx.Response(
                    400,
                    json={
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with",
                        }
                    },
                )
            return httpx.Response(status, json=body, headers={"Idempotent-Replayed": "true"})
        try:
            status, body = 200, self._route(request.method, request.url.path, params)
        except StripeError as exc:
            status, body = exc.status, {"error": exc.error}
        if key and request.method in ("POST", "DELETE") and status < 500:
            self._idempotent[key] = (fingerprint, status, body)
        return httpx.Response(status, json=body, headers={"Request-Id": f"req_{next(self._ids)}"})

    def _route(self, method: str, path: str, params: Json) -> Json:
        for pattern, verb, handler in self._routes():
            matched = re.fullmatch(pattern, path)
            if matched and verb == method:
                return handler(params, *matched.groups())
        raise StripeError(404, f"Unrecognized request URL ({method}: {path})")

    def _routes(self) -> list[tuple[str, str, Callable[..., Json]]]:
        return [
            (r"/v1/customers", "POST", self._create_customer),
            (r"/v1/products", "POST", self._create_product),
            (r"/v1/products/([^/]+)", "GET", lambda p, i: self._get("product", i, p)),
            (r"/v1/products/([^/]+)", "POST", self._update_product),
            (r"/v1/prices", "POST", self._create_price),
            (r"/v1/prices/([^/]+)", "GET", lambda p, i: self._get("price", i, p)),
            (r"/v1/prices/([^/]+)", "POST", self._update_price),
            (r"/v1/billing/meters", "GET", self._list_meters),
            (r"/v1/billing/meters", "POST", self._create_meter),
            (r"/v1/billing/meters/([^/]+)", "GET", lambda p, i: self._get("billing.meter", i, p)),
            (r"/v1/billing/meter_events", "POST", self._create_meter_event),
            (r"/v1/checkout/sessions", "POST", self._create_checkout_session),
            (r"/v1/checkout/sessions/([^/]+)", "GET", lambda p, i: self._get("checkout.session", i, p)),
            (r"/v1/payment_intents/([^/]+)", "GET", lambda p, i: self._get("payment_intent", i, p)),
            (r"/v1/charges/([^/]+)", "GET", lambda p, i: self._get("charge", i, p)),
            (r"/v1/refunds", "POST", self._create_refund),
            (r"/v1/refunds/([^/]+)", "GET", lambda p, i: self._get("refund", i, p)),
            (r"/v1/invoice_payments", "GET", self._list_invoice_payments),
            (r"/v1/invoices/([^/]+)", "GET", lambda p, i: self._get("invoice", i, p)),
            (r"/v1/subscriptions/([^/]+)", "GET", lambda p, i: self._get("subscription", i, p)),
            (r"/v1/subscriptions/([^/]+)", "POST", self._update_subscription),
            (r"/v1/subscriptions/([^/]+)", "DELETE", self._cancel_subscription),
            (r"/v1/subscriptions/([^/]+)/resume", "POST", self._resume_subscription),
            (r"/v1/billing_portal/sessions", "POST", self._create_portal_session),
            (r"/v1/tax_rates", "POST", self._create_tax_rate),
            (r"/v1/tax_rates", "GET", self._list_tax_rates),
            (r"/v1/tax_rates/([^/]+)", "GET", lambda p, i: self._get("tax_rate", i, p)),
        ]

    # ------------------------------------------------------------------ objects

    def add(self, obj: Json) -> Json:
        self.objects[obj["id"]] = obj
        return obj

    def find(self, kind: str, object_id: str) -> Json:
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise _missing(kind, object_id)
        return obj

    def _get(self, kind: str, object_id: str, params: Json) -> Json:
        return self.render(self.find(kind, object_id), params.get("expand", []))

    def render(self, obj: Json, expand: list[str] | None = None) -> Json:
        """The object as Stripe answers it: internal fields dropped, ``expand`` paths inlined."""
        rendered = {key: copy.deepcopy(value) for key, value in obj.items() if not key.startswith("_")}
        for path in expand or []:
            # An object the stub never held (one of an event recorded elsewhere) stays an id.
            if path in rendered and isinstance(rendered[path], str) and rendered[path] in self.objects:
                rendered[path] = self.render(self.objects[rendered[path]])
        return rendered

    # ------------------------------------------------------------------ customers, catalog

    def _create_customer(self, params: Json) -> Json:
        customer = {
            "id": self.new_id("cus"),
            "object": "customer",
            "email": params.get("email"),
            "name": params.get("name"),
            "metadata": params.get("metadata", {}),
            "created": self.clock(),
            "livemode": False,
        }
        return self.render(self.add(customer))

    def _create_product(self, params: Json) -> Json:
        product_id = params.get("id") or self.new_id("prod")
        if product_id in self.objects:
            raise StripeError(400, f"Product already exists: {product_id}", code="resource_already_exists")
        product = {
            "id": product_id,
            "object": "product",
            "name": params["name"],
            "active": True,
            "metadata": params.get("metadata", {}),
            "created": self.clock(),
        }
        return self.render(self.add(product))

    def _update_product(self, params: Json, product_id: str) -> Json:
        product = self.find("product", product_id)
        if "name" in params:
            product["name"] = params["name"]
        if "active" in params:
            product["active"] = _flag(params["active"])
        return self.render(product)

    def _create_price(self, params: Json) -> Json:
        self.find("product", params["product"])
        if params["currency"] in self.refused_currencies:
            raise StripeError(400, f"currency {params['currency']} is not supported", param="currency")
        recurring = params.get("recurring")
        if params.get("billing_scheme") == "tiered" and not recurring:
            raise StripeError(400, "Tiered prices must be recurring", param="billing_scheme")
        price = {
            "id": self.new_id("price"),
            "object": "price",
            "active": True,
            "currency": params["currency"],
            "product": params["product"],
            "nickname": params.get("nickname"),
            "billing_scheme": params.get("billing_scheme", "per_unit"),
            "tiers_mode": params.get("tiers_mode"),
            "unit_amount": int(params["unit_amount"]) if "unit_amount" in params else None,
            "type": "recurring" if recurring else "one_time",
            "recurring": None
            if not recurring
            else {
                "interval": recurring["interval"],
                "interval_count": int(recurring.get("interval_count", 1)),
                "usage_type": recurring.get("usage_type", "licensed"),
                "meter": recurring.get("meter"),
            },
            "lookup_key": params.get("lookup_key"),
            "metadata": params.get("metadata", {}),
            "created": self.clock(),
            "_tiers": params.get("tiers"),
        }
        if _flag(params.get("transfer_lookup_key")) and price["lookup_key"]:
            for other in self.objects.values():
                if other["object"] == "price" and other.get("lookup_key") == price["lookup_key"]:
                    other["lookup_key"] = None
        return self.render(self.add(price))

    def _update_price(self, params: Json, price_id: str) -> Json:
        price = self.find("price", price_id)
        if "active" in params:
            price["active"] = _flag(params["active"])
        return self.render(price)

    def _list_meters(self, params: Json) -> Json:
        meters = [self.render(m) for m in self.objects.values() if m["object"] == "billing.meter"]
        if params.get("status"):
            meters = [m for m in meters if m["status"] == params["status"]]
        return {"object": "list", "url": "/v1/billing/meters", "has_more": False, "data": meters}

    def _create_meter(self, params: Json) -> Json:
        meter = {
            "id": self.new_id("mtr"),
            "object": "billing.meter",
            "display_name": params["display_name"],
            "event_name": params["event_name"],
            "status": "active",
            "default_aggregation": params["default_aggregation"],
            "customer_mapping": params.get("customer_mapping"),
            "value_settings": params.get("value_settings"),
            "created": self.clock(),
        }
        return self.render(self.add(meter))

    def _create_meter_event(self, params: Json) -> Json:
        self.meter_events.append(params)
        return {
            "object": "billing.meter_event",
            "event_name": params["event_name"],
            "identifier": params.get("identifier"),
            "payload": params["payload"],
            "timestamp": int(params.get("timestamp", self.clock())),
            "created": self.clock(),
            "livemode": False,
        }

    # ------------------------------------------------------------------ tax rates

    def _create_tax_rate(self, params: Json) -> Json:
        rate = {
            "id": self.new_id("txr"),
            "object": "tax_rate",
            "active": True,
            "display_name": params["display_name"],
            "description": params.get("description"),
            "percentage": float(params["percentage"]),
            "inclusive": _flag(params["inclusive"]),
            "jurisdiction": params.get("jurisdiction"),
            "country": params.get("country"),
            "metadata": params.get("metadata", {}),
            "created": self.clock(),
            "livemode": False,
        }
        return self.render(self.add(rate))

    def _list_tax_rates(self, params: Json) -> Json:
        rates = [self.render(r) for r in self.objects.values() if r["object"] == "tax_rate"]
        if "active" in params:
            rates = [r for r in rates if r["active"] == _flag(params["active"])]
        return {"object": "list", "url": "/v1/tax_rates", "has_more": False, "data": rates}

    def _line_tax(self, amount: int, tax_rates: list[str]) -> tuple[int, list[Json]]:
        """The tax Stripe adds to a line of ``amount`` (exclusive rates) and the invoice's ``total_taxes``.

        Stripe rounds each line's tax to the minor unit; the stub rounds half up, as localstripe
        models it (the library rounds half to even: the two differ only on an exact half).
        """
        added, taxes = 0, []
        for rate_id in tax_rates:
            rate = self.find("tax_rate", rate_id)
            percentage = Decimal(str(rate["percentage"]))
            if rate["inclusive"]:
                net = (Decimal(amount) * 100 / (100 + percentage)).quantize(Decimal(1), ROUND_HALF_UP)
                tax = amount - int(net)
            else:
                tax = int((Decimal(amount) * percentage / 100).quantize(Decimal(1), ROUND_HALF_UP))
                added += tax
            taxes.append(
                {
                    "amount": tax,
                    "tax_behavior": "inclusive" if rate["inclusive"] else "exclusive",
                    "tax_rate_details": {"tax_rate": rate_id},
                    "taxability_reason": None,
                    "taxable_amount": amount - (tax if rate["inclusive"] else 0),
                    "type": "tax_rate_details",
                }
            )
        return added, taxes

    # ------------------------------------------------------------------ checkout and portal

    def _create_checkout_session(self, params: Json) -> Json:
        now = self.clock()
        expires_at = int(params.get("expires_at", now + 86400))
        if not now + 1800 <= expires_at <= now + 86400:
            raise StripeError(400, "expires_at must be between 30 minutes and 24 hours", param="expires_at")
        lines = params.get("line_items", [])
        if params["mode"] == "subscription":
            for line in lines:
                price = self.find("price", line["price"])
                if price["type"] != "recurring" or not price["active"]:
                    raise StripeError(
                        400, "subscription mode needs active recurring prices", param="line_items"
                    )
        session_id = self.new_id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            "customer": params.get("customer"),
            "customer_email": params.get("customer_email"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "expires_at": expires_at,
            "payment_intent": None,
            "subscription": None,
            "created": now,
        }
        self._checkout_extras[session_id] = params
        return self.render(self.add(session))

    def _create_portal_session(self, params: Json) -> Json:
        self.find("customer", params["customer"])
        portal_id = self.new_id("bps")
        return {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": params["customer"],
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/{portal_id}",
            "created": self.clock(),
        }

    def complete_checkout(self, session_id: str, *, declined: bool = False) -> list[Json]:
        """Pay (or decline) a session as its hosted page would; the events Stripe would send."""
        session = self.find("checkout.session", session_id)
        params = self._checkout_extras[session_id]
        customer = session["customer"] or self._create_customer({"email": session["customer_email"]})["id"]
        session["customer"] = customer
        line = params["line_items"][0]
        emitted: list[Json] = []
        if session["mode"] == "payment":
            data = line["price_data"]
            intent = self.add_payment_intent(
                int(data["unit_amount"]),
                data["currency"],
                customer=customer,
                metadata=params.get("payment_intent_data", {}).get("metadata", {}),
                declined=declined,
            )
            session["payment_intent"] = intent["id"]
            emitted.append(
                self.event(
                    "payment_intent.payment_failed" if declined else "payment_intent.succeeded", intent
                )
            )
        else:
            subscription, invoice, paid_by = self.add_subscription(
                customer,
                self.find("price", line["price"]),
                int(line.get("quantity", 1)),
                metadata=params.get("subscription_data", {}).get("metadata", {}),
                trial_days=int(params.get("subscription_data", {}).get("trial_period_days", 0)),
                tax_rates=list(line.get("tax_rates", [])),
            )
            session["subscription"] = subscription["id"]
            emitted += [
                self.event("customer.subscription.created", subscription),
                self.event("invoice.paid", invoice),
            ]
            if paid_by is not None:
                emitted.append(self.event("payment_intent.succeeded", paid_by))
        if not declined:
            session["status"], session["payment_status"] = "complete", "paid"
            emitted.append(self.event("checkout.session.completed", session))
        return emitted

    # ------------------------------------------------------------------ payments and refunds

    def add_payment_intent(
        self,
        amount: int,
        currency: str,
        *,
        customer: str | None = None,
        metadata: Json | None = None,
        declined: bool = False,
    ) -> Json:
        """A confirmed PaymentIntent with its charge: succeeded, or declined by the card."""
        intent_id = self.new_id("pi")
        charge = self.add(
            {
                "id": self.new_id("ch"),
                "object": "charge",
                "amount": amount,
                "amount_refunded": 0,
                "refunded": False,
                "currency": currency,
                "status": "failed" if declined else "succeeded",
                "payment_intent": intent_id,
                "customer": customer,
                "failure_code": "card_declined" if declined else None,
                "failure_message": "Your card was declined." if declined else None,
                "payment_method_details": {
                    "type": "card",
                    "card": {"brand": "visa", "last4": "0002" if declined else "4242"},
                },
                "created": self.clock(),
            }
        )
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "currency": currency,
            "status": "requires_payment_method" if declined else "succeeded",
            "customer": customer,
            "description": None,
            "metadata": metadata or {},
            "latest_charge": charge["id"],
            "last_payment_error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
            }
            if declined
            else None,
            "created": self.clock(),
        }
        return self.add(intent)

    def _create_refund(self, params: Json) -> Json:
        intent = self.find("payment_intent", params["payment_intent"])
        charge = self.find("charge", intent["latest_charge"])
        if intent["status"] != "succeeded":
            raise StripeError(400, "This PaymentIntent has not succeeded", code="charge_not_refundable")
        amount = int(params.get("amount", charge["amount"] - charge["amount_refunded"]))
        if amount > charge["amount"] - charge["amount_refunded"]:
            raise StripeError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge",
                code="amount_too_large",
                param="amount",
            )
        refund = self.add(
            {
                "id": self.new_id("re"),
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "payment_intent": intent["id"],
                "charge": charge["id"],
                "status": "succeeded",
                "reason": params.get("reason"),
                "metadata": params.get("metadata", {}),
                "created": self.clock(),
            }
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self.event("refund.created", refund)
        self.event("charge.refunded", charge)
        return self.render(refund)

    # ------------------------------------------------------------------ subscriptions and invoices

    def add_subscription(
        self,
        customer: str,
        price: Json,
        quantity: int,
        *,
        metadata: Json,
        trial_days: int = 0,
        tax_rates: list[str] | None = None,
    ) -> tuple[Json, Json, Json | None]:
        """An active (or trialing) subscription, its first invoice and the payment of that invoice."""
        now = self.clock()
        period_end = now + 30 * 86400
        subscription_id = self.new_id("sub")
        metered = price["recurring"]["usage_type"] == "metered"
        item = {
            "id": self.new_id("si"),
            "object": "subscription_item",
            "price": self.render(price),
            "quantity": None if metered else quantity,
            "current_period_start": now,
            "current_period_end": period_end,
            "subscription": subscription_id,
            "tax_rates": [self.render(self.find("tax_rate", rate_id)) for rate_id in tax_rates or []],
        }
        subscription = self.add(
            {
                "id": subscription_id,
                "object": "subscription",
                "status": "trialing" if trial_days else "active",
                "customer": customer,
                "items": {"object": "list", "data": [item], "has_more": False},
                "cancel_at_period_end": False,
                "cancel_at": None,
                "canceled_at": None,
                "ended_at": None,
                "pause_collection": None,
                "trial_start": now if trial_days else None,
                "trial_end": now + trial_days * 86400 if trial_days else None,
                "metadata": dict(metadata),
                "start_date": now,
                "created": now,
            }
        )
        unit = price["unit_amount"] or 0
        amount = 0 if trial_days or metered else unit * quantity
        added, total_taxes = self._line_tax(amount, tax_rates or [])
        total = amount + added
        intent = self.add_payment_intent(total, price["currency"], customer=customer) if total else None
        invoice = self.add(
            {
                "id": self.new_id("in"),
                "object": "invoice",
                "status": "paid",
                "customer": customer,
                "currency": price["currency"],
                "subtotal": amount,
                "total": total,
                "total_taxes": total_taxes,
                "amount_due": total,
                "amount_paid": total,
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {"subscription": subscription_id, "metadata": dict(metadata)},
                },
                "lines": {
                    "object": "list",
                    "has_more": False,
                    "data": [
                        {
                            "id": self.new_id("il"),
                            "object": "line_item",
                            "amount": amount,
                            "currency": price["currency"],
                            "description": f"{quantity} x {price.get('nickname') or price['id']}",
                            "quantity": quantity,
                            "period": {"start": now, "end": period_end},
                            "pricing": {
                                "type": "price_details",
                                "price_details": {"price": price["id"], "product": price["product"]},
                                "unit_amount_decimal": str(unit),
                            },
                            "parent": {
                                "type": "subscription_item_details",
                                "subscription_item_details": {
                                    "proration": False,
                                    "subscription": subscription_id,
                                    "subscription_item": item["id"],
                                },
                            },
                        }
                    ],
                },
                "period_start": now,
                "period_end": now,
                "created": now,
                "_payment_intent": intent["id"] if intent else None,
            }
        )
        return self.render(subscription), self.render(invoice), intent

    def _invoice_payments(self, invoice_id: str, *, expand_invoice: bool = False) -> Json:
        invoice = self.find("invoice", invoice_id)
        data = []
        if invoice["_payment_intent"]:
            data.append(
                {
                    "id": f"inpay_{invoice_id}",
                    "object": "invoice_payment",
                    "invoice": self.render(invoice) if expand_invoice else invoice_id,
                    "status": "paid",
                    "amount_paid": invoice["amount_paid"],
                    "currency": invoice["currency"],
                    "payment": {"type": "payment_intent", "payment_intent": invoice["_payment_intent"]},
                }
            )
        return {"object": "list", "url": "/v1/invoice_payments", "has_more": False, "data": data}

    def _list_invoice_payments(self, params: Json) -> Json:
        wanted = params.get("payment", {}).get("payment_intent")
        expand = "data.invoice" in params.get("expand", [])
        for invoice in [o for o in self.objects.values() if o["object"] == "invoice"]:
            if invoice["id"] == params.get("invoice") or (
                wanted and invoice.get("_payment_intent") == wanted
            ):
                return self._invoice_payments(invoice["id"], expand_invoice=expand)
        return {"object": "list", "url": "/v1/invoice_payments", "has_more": False, "data": []}

    def _update_subscription(self, params: Json, subscription_id: str) -> Json:
        subscription = self.find("subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise StripeError(400, "A canceled subscription can only update its cancellation_details")
        for change in params.get("items", []):
            item = next(i for i in subscription["items"]["data"] if i["id"] == change["id"])
            if "price" in change:
                item["price"] = self.render(self.find("price", change["price"]))
            if "quantity" in change:
                if item["price"]["recurring"]["usage_type"] == "metered":
                    raise StripeError(400, "Quantity cannot be set for metered prices", param="quantity")
                item["quantity"] = int(change["quantity"])
            if "tax_rates" in change:
                item["tax_rates"] = [
                    self.render(self.find("tax_rate", rate_id)) for rate_id in change["tax_rates"]
                ]
        if "cancel_at_period_end" in params:
            subscription["cancel_at_period_end"] = _flag(params["cancel_at_period_end"])
            subscription["cancel_at"] = (
                subscription["items"]["data"][0]["current_period_end"]
                if subscription["cancel_at_period_end"]
                else None
            )
        if params.get("cancel_at") == "":
            subscription["cancel_at"] = None
        if "pause_collection" in params:
            paused = params["pause_collection"]
            subscription["pause_collection"] = None if paused == "" else {"behavior": paused["behavior"]}
        subscription["metadata"].update(params.get("metadata", {}))
        subscription["_proration_behavior"] = params.get("proration_behavior")
        self.event("customer.subscription.updated", subscription)
        return self.render(subscription)

    def _cancel_subscription(self, params: Json, subscription_id: str) -> Json:
        subscription = self.find("subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise StripeError(400, f"No such subscription: '{subscription_id}'", code="resource_missing")
        now = self.clock()
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
        self.event("customer.subscription.deleted", subscription)
        return self.render(subscription)

    def _resume_subscription(self, params: Json, subscription_id: str) -> Json:
        subscription = self.find("subscription", subscription_id)
        if subscription["status"] != "paused":
            raise StripeError(400, "Only a paused subscription can be resumed")
        subscription["status"] = "active"
        return self.render(subscription)

    # ------------------------------------------------------------------ events

    def event(self, event_type: str, obj: Json) -> Json:
        """Record and return the event Stripe would send about ``obj`` now."""
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": self.clock(),
            "type": event_type,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": self.render(obj)},
        }
        self.events.append(event)
        return event


def signed_delivery(event: Json, secret: str, *, timestamp: int) -> tuple[dict[str, str], bytes]:
    """Headers and body of a webhook delivery of ``event``, signed by the SDK's own helper."""
    body = json.dumps(event, indent=2)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    return {"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"}, body.encode()
