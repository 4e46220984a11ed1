"""An in-process Lemon Squeezy: the JSON:API wire format of every call the adapter makes, and signed webhooks.

Resources answer with the attribute names of Lemon Squeezy's API (as typed by its JavaScript SDK):
stores, products and variants the test seeds, checkouts with a hosted page of their own
(``GET /checkout/{id}``, whose form posts ``outcome=paid|declined``), orders and their refunds,
subscriptions and their items, usage records, subscription invoices and their refunds, and
webhooks. Every change that Lemon Squeezy announces is signed as a webhook (``X-Signature``,
hex HMAC-SHA256 of the body), in Lemon Squeezy's order (``order_created``, then
``subscription_created``, then ``subscription_payment_success``), kept in
:attr:`LemonSqueezyServer.sent` (so tests can redeliver, shuffle or tamper with them) and queued in
:attr:`~LemonSqueezyServer.outbox` until :meth:`~LemonSqueezyServer.flush` hands them to ``deliver``
(at once with ``deliver_at_once``): a test decides when Lemon Squeezy's deliveries arrive.

Requests are refused as Lemon Squeezy refuses them: a missing or wrong bearer key is a 401, a
wrong media type a 415, an unknown id a 404, a bad attribute a 422 with ``source.pointer``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

JSON_API = "application/vnd.api+json"
Deliver = Callable[[dict[str, str], bytes], Awaitable[None]]


def iso(moment: datetime) -> str:
    """Lemon Squeezy's time format: ``2024-06-19T14:08:14.000000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_interval(moment: datetime, interval: str, count: int) -> datetime:
    if interval == "day":
        return moment + timedelta(days=count)
    if interval == "week":
        return moment + timedelta(weeks=count)
    months = count * (12 if interval == "year" else 1)
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


class JsonApiError(Exception):
    def __init__(self, status: int, detail: str, pointer: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.pointer = status, detail, pointer


@dataclass
class Variant:
    id: int
    product_id: int
    name: str
    price: int
    is_subscription: bool = True
    interval: str | None = "month"
    interval_count: int = 1
    usage_based: bool = False
    status: str = "published"


@dataclass
class LemonSqueezyServer:
    """The state of one store, and the ASGI app serving it (:attr:`app`, :meth:`transport`)."""

    api_key: str = "ls_test_key"
    store_id: int = 1
    currency: str = "USD"
    webhook_secret: str = "ls-webhook-secret"
    # Lemon Squeezy's clock: the real time at the start (the inbox judges how long a delivery may
    # wait for the object it names by it), moved by advance() and renew().
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    deliver: Deliver | None = None
    base_url: str = "https://ls.test"
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    variants: dict[int, Variant] = field(default_factory=dict)
    checkouts: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage_records: dict[int, dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    custom_data: dict[int, dict[str, Any]] = field(default_factory=dict)
    sent: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    outbox: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    deliver_at_once: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)
    lose_answers: set[tuple[str, str]] = field(default_factory=set)
    refuse_connections: set[tuple[str, str]] = field(default_factory=set)
    pending_invoice: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    def __post_init__(self) -> None:
        self.app = Starlette(routes=self._routes())

    # ------------------------------------------------------------------ seeding and clock

    def add_product(self, name: str, variants: list[Variant]) -> int:
        product_id = next(self._ids)
        self.products[product_id] = {"name": name, "store_id": self.store_id}
        for variant in variants:
            variant.product_id = product_id
            self.variants[variant.id] = variant
        return product_id

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport into the app; a request in :attr:`lose_answers` is done but its answer
        lost, one in :attr:`refuse_connections` never reaches the app (each once)."""
        return _LosingTransport(self)

    # ------------------------------------------------------------------ routes

    def _routes(self) -> list[Route]:
        api = [
            ("/v1/stores/{id:int}", self._get_store, ["GET"]),
            ("/v1/products", self._list_products, ["GET"]),
            ("/v1/variants", self._list_variants, ["GET"]),
            ("/v1/variants/{id:int}", self._get_variant, ["GET"]),
            ("/v1/customers", self._create_customer, ["POST"]),
            ("/v1/customers", self._list_customers, ["GET"]),
            ("/v1/customers/{id:int}", self._get_customer, ["GET"]),
            ("/v1/checkouts", self._create_checkout, ["POST"]),
            ("/v1/checkouts", self._list_checkouts, ["GET"]),
            ("/v1/checkouts/{id:int}", self._get_checkout, ["GET"]),
            ("/v1/orders/{id:int}", self._get_order, ["GET"]),
            ("/v1/orders/{id:int}/refund", self._refund_order, ["POST"]),
            ("/v1/subscriptions/{id:int}", self._get_subscription, ["GET"]),
            ("/v1/subscriptions/{id:int}", self._update_subscription, ["PATCH"]),
            ("/v1/subscriptions/{id:int}", self._cancel_subscription, ["DELETE"]),
            ("/v1/subscription-items/{id:int}", self._update_item, ["PATCH"]),
            ("/v1/subscription-items/{id:int}/current-usage", self._current_usage, ["GET"]),
            ("/v1/usage-records", self._create_usage, ["POST"]),
            ("/v1/usage-records", self._list_usage, ["GET"]),
            ("/v1/subscription-invoices/{id:int}", self._get_invoice, ["GET"]),
            ("/v1/subscription-invoices/{id:int}/refund", self._refund_invoice, ["POST"]),
            ("/v1/webhooks", self._create_webhook, ["POST"]),
            ("/v1/webhooks", self._list_webhooks, ["GET"]),
        ]
        routes = [Route(path, self._api(handler), methods=methods) for path, handler, methods in api]
        routes.append(Route("/checkout/{id:int}", self._checkout_page, methods=["GET"]))
        routes.append(Route("/checkout/{id:int}", self._checkout_submit, methods=["POST"]))
        return routes

    def _api(self, handler: Callable[..., Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            try:
                if request.headers.get("authorization") != f"Bearer {self.api_key}":
                    raise JsonApiError(401, "Unauthenticated.")
                if request.headers.get("accept") != JSON_API:
                    raise JsonApiError(406, f"Accept must be {JSON_API}")
                body: dict[str, Any] = {}
                if request.method in ("POST", "PATCH"):
                    if request.headers.get("content-type") != JSON_API:
                        raise JsonApiError(415, f"Content-Type must be {JSON_API}")
                    raw = await request.body()
                    body = json.loads(raw) if raw else {}
                answer = await handler(request, body)
            except JsonApiError as exc:
                error: dict[str, Any] = {"status": str(exc.status), "title": "Error", "detail": exc.detail}
                if exc.pointer:
                    error["source"] = {"pointer": exc.pointer}
                return JSONResponse({"errors": [error]}, status_code=exc.status, media_type=JSON_API)
            if answer is None:
                return Response(status_code=204)
            status = 201 if request.method == "POST" and "refund" not in request.url.path else 200
            return JSONResponse(answer, status_code=status, media_type=JSON_API)

        return endpoint

    # ------------------------------------------------------------------ documents

    def _resource(self, type_: str, id_: int, attributes: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": type_,
            "id": str(id_),
            "attributes": attributes,
            "relationships": {},
            "links": {"self": f"{self.base_url}/v1/{type_}/{id_}"},
        }

    def _document(self, type_: str, id_: int, attributes: dict[str, Any]) -> dict[str, Any]:
        return {"jsonapi": {"version": "1.0"}, "data": self._resource(type_, id_, attributes)}

    def _list(self, type_: str, items: list[tuple[int, dict[str, Any]]], request: Request) -> dict[str, Any]:
        size = int(request.query_params.get("page[size]", "10"))
        number = int(request.query_params.get("page[number]", "1"))
        last = max(1, -(-len(items) // size))
        page = items[(number - 1) * size : number * size]
        return {
            "meta": {"page": {"currentPage": number, "lastPage": last, "perPage": size, "total": len(items)}},
            "data": [self._resource(type_, id_, attrs) for id_, attrs in page],
        }

    @staticmethod
    def _attributes(body: dict[str, Any], type_: str) -> dict[str, Any]:
        data = body.get("data")
        if not isinstance(data, dict) or data.get("type") != type_:
            raise JsonApiError(422, f"data.type must be {type_}", "/data/type")
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise JsonApiError(422, "attributes must be an object", "/data/attributes")
        return attributes

    @staticmethod
    def _related_id(body: dict[str, Any], name: str) -> int:
        try:
            return int(body["data"]["relationships"][name]["data"]["id"])
        except (KeyError, TypeError, ValueError):
            raise JsonApiError(
                422, f"The {name} relationship is required.", f"/data/relationships/{name}"
            ) from None

    @staticmethod
    def _found(table: dict[int, Any], id_: int) -> Any:
        if id_ not in table:
            raise JsonApiError(404, "Not found.")
        return table[id_]

    # ------------------------------------------------------------------ catalog

    async def _get_store(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if request.path_params["id"] != self.store_id:
            raise JsonApiError(404, "Not found.")
        return self._document("stores", self.store_id, {"name": "Test store", "currency": self.currency})

    async def _list_products(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._list("products", list(self.products.items()), request)

    def _variant_attributes(self, variant: Variant) -> dict[str, Any]:
        return {
            "product_id": variant.product_id,
            "name": variant.name,
            "price": variant.price,
            "is_subscription": variant.is_subscription,
            "interval": variant.interval if variant.is_subscription else None,
            "interval_count": variant.interval_count if variant.is_subscription else None,
            "has_free_trial": False,
            "status": variant.status,
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
            "test_mode": True,
        }

    async def _list_variants(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        product = request.query_params.get("filter[product_id]")
        items = [
            (variant.id, self._variant_attributes(variant))
            for variant in self.variants.values()
            if product is None or str(variant.product_id) == product
        ]
        return self._list("variants", items, request)

    async def _get_variant(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        variant = self._found(self.variants, request.path_params["id"])
        return self._document("variants", variant.id, self._variant_attributes(variant))

    # ------------------------------------------------------------------ customers

    def customer_for(self, email: str, name: str | None = None) -> int:
        """The store's customer with ``email`` (Lemon Squeezy keys customers by email), made on first use."""
        for id_, record in self.customers.items():
            if record["email"] == email:
                return id_
        customer_id = next(self._ids)
        self.customers[customer_id] = {
            "store_id": self.store_id,
            "name": name or email,
            "email": email,
            "status": "subscribed",
            "urls": {"customer_portal": f"{self.base_url}/billing?customer={customer_id}"},
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
            "test_mode": True,
        }
        return customer_id

    async def _create_customer(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        attributes = self._attributes(body, "customers")
        self._related_id(body, "store")
        email = attributes.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise JsonApiError(422, "The email must be a valid email address.", "/data/attributes/email")
        if any(record["email"] == email for record in self.customers.values()):
            raise JsonApiError(422, "The email has already been taken.", "/data/attributes/email")
        customer_id = self.customer_for(email, attributes.get("name"))
        return self._document("customers", customer_id, self.customers[customer_id])

    async def _list_customers(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        email = request.query_params.get("filter[email]")
        items = [(i, c) for i, c in self.customers.items() if email is None or c["email"] == email]
        return self._list("customers", items, request)

    async def _get_customer(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        customer = self._found(self.customers, request.path_params["id"])
        return self._document("customers", request.path_params["id"], customer)

    # ------------------------------------------------------------------ checkouts

    async def _create_checkout(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        attributes = self._attributes(body, "checkouts")
        store_id = self._related_id(body, "store")
        variant_id = self._related_id(body, "variant")
        if store_id != self.store_id:
            raise JsonApiError(404, "Store not found.", "/data/relationships/store")
        if variant_id not in self.variants:
            raise JsonApiError(422, "The selected variant is invalid.", "/data/relationships/variant")
        custom_price = attributes.get("custom_price")
        if custom_price is not None and (not isinstance(custom_price, int) or isinstance(custom_price, bool)):
            raise JsonApiError(422, "The custom price must be an integer.", "/data/attributes/custom_price")
        checkout_data = attributes.get("checkout_data") or {}
        checkout_id = next(self._ids)
        record = {
            "store_id": store_id,
            "variant_id": variant_id,
            "custom_price": custom_price,
            "product_options": attributes.get("product_options") or {},
            "checkout_options": attributes.get("checkout_options") or {},
            "checkout_data": checkout_data,
            "expires_at": attributes.get("expires_at"),
            "preview": False,
            "test_mode": bool(attributes.get("test_mode", True)),
            "url": f"{self.base_url}/checkout/{checkout_id}",
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
            "_used": False,
        }
        self.checkouts[checkout_id] = record
        return self._document("checkouts", checkout_id, _public(record))

    async def _list_checkouts(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        variant = request.query_params.get("filter[variant_id]")
        items = [
            (id_, _public(record))
            for id_, record in self.checkouts.items()
            if variant is None or str(record["variant_id"]) == variant
        ]
        return self._list("checkouts", items, request)

    async def _get_checkout(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        record = self._found(self.checkouts, request.path_params["id"])
        return self._document("checkouts", request.path_params["id"], _public(record))

    async def _checkout_page(self, request: Request) -> Response:
        checkout_id = request.path_params["id"]
        record = self.checkouts.get(checkout_id)
        if record is None:
            return HTMLResponse("<h1>Checkout not found</h1>", status_code=404)
        variant = self.variants[record["variant_id"]]
        price = record["custom_price"] if record["custom_price"] is not None else variant.price
        email = html.escape(str(record["checkout_data"].get("email") or ""))
        return HTMLResponse(
            f"<!doctype html><title>Checkout</title><h1>{html.escape(variant.name)}</h1>"
            f"<p>{price} {self.currency} minor units, for {email}</p>"
            f'<form method="post"><button name="outcome" value="paid">Pay</button>'
            f'<button name="outcome" value="declined">Decline</button></form>'
        )

    async def _checkout_submit(self, request: Request) -> Response:
        checkout_id = request.path_params["id"]
        record = self.checkouts.get(checkout_id)
        if record is None:
            return HTMLResponse("<h1>Checkout not found</h1>", status_code=404)
        form = await request.form()
        if form.get("outcome") != "paid":
            return HTMLResponse("<h1>Your card was declined</h1>", status_code=402)
        await self.complete_checkout(checkout_id)
        redirect = record["product_options"].get("redirect_url")
        return RedirectResponse(redirect, status_code=303) if redirect else HTMLResponse("<h1>Thanks</h1>")

    async def complete_checkout(self, checkout_id: int, *, deliver: bool = True) -> int:
        """Pay a checkout: the order (and for a subscription variant, the subscription and its first
        invoice), with their webhooks. Returns the order id."""
        record = self.checkouts[checkout_id]
        if record["_used"]:
            raise JsonApiError(422, "This checkout has already been used.")
        record["_used"] = True
        variant = self.variants[record["variant_id"]]
        custom = record["checkout_data"].get("custom") or {}
        quantity = 1
        for entry in record["checkout_data"].get("variant_quantities") or []:
            if int(entry.get("variant_id", 0)) == variant.id:
                quantity = int(entry.get("quantity", 1))
        unit = record["custom_price"] if record["custom_price"] is not None else variant.price
        total = unit * quantity
        order_id = next(self._ids)
        customer_id = self.customer_for(record["checkout_data"].get("email") or "buyer@example.com")
        self.orders[order_id] = {
            "store_id": self.store_id,
            "customer_id": customer_id,
            "identifier": f"order-{order_id}",
            "order_number": order_id,
            "user_name": record["checkout_data"].get("name") or "Buyer",
            "user_email": record["checkout_data"].get("email") or "buyer@example.com",
            "currency": self.currency,
            "currency_rate": "1.00000000",
            "status": "paid",
            "status_formatted": "Paid",
            "refunded": False,
            "refunded_at": None,
            "subtotal": total,
            "discount_total": 0,
            "tax": 0,
            "total": total,
            "refunded_amount": 0,
            "first_order_item": {
                "id": order_id,
                "order_id": order_id,
                "product_id": variant.product_id,
                "variant_id": variant.id,
                "product_name": self.products.get(variant.product_id, {}).get("name", "Product"),
                "variant_name": variant.name,
                "price": unit,
                "quantity": quantity,
            },
            "urls": {"receipt": f"{self.base_url}/my-orders/{order_id}"},
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
            "test_mode": True,
        }
        self.custom_data[order_id] = custom
        events: list[tuple[str, str, int, dict[str, Any]]] = [("order_created", "orders", order_id, custom)]
        if variant.is_subscription:
            subscription_id = next(self._ids)
            item_id = next(self._ids)
            self.subscriptions[subscription_id] = {
                "store_id": self.store_id,
                "customer_id": customer_id,
                "order_id": order_id,
                "order_item_id": order_id,
                "product_id": variant.product_id,
                "variant_id": variant.id,
                "product_name": self.products.get(variant.product_id, {}).get("name", "Product"),
                "variant_name": variant.name,
                "user_name": "Buyer",
                "user_email": record["checkout_data"].get("email") or "buyer@example.com",
                "status": "active",
                "status_formatted": "Active",
                "card_brand": "visa",
                "card_last_four": "4242",
                "pause": None,
                "cancelled": False,
                "trial_ends_at": None,
                "billing_anchor": self.now.day,
                "first_subscription_item": {
                    "id": item_id,
                    "subscription_id": subscription_id,
                    "price_id": variant.id,
                    "quantity": quantity,
                    "is_usage_based": variant.usage_based,
                    "created_at": iso(self.now),
                    "updated_at": iso(self.now),
                },
                "urls": {
                    "update_payment_method": f"{self.base_url}/subscription/{subscription_id}/payment",
                    "customer_portal": f"{self.base_url}/billing?user={customer_id}",
                },
                "renews_at": iso(add_interval(self.now, variant.interval or "month", variant.interval_count)),
                "ends_at": None,
                "created_at": iso(self.now),
                "updated_at": iso(self.now),
                "test_mode": True,
                "_unit": unit,
            }
            self.custom_data[subscription_id] = custom
            invoice_id = self._invoice(subscription_id, total, "initial")
            events.append(("subscription_created", "subscriptions", subscription_id, custom))
            events.append(("subscription_payment_success", "subscription-invoices", invoice_id, custom))
        if deliver:
            for name, type_, id_, data in events:
                await self.send(name, type_, id_, data)
        return order_id

    # ------------------------------------------------------------------ orders and refunds

    async def _get_order(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        order = self._found(self.orders, request.path_params["id"])
        return self._document("orders", request.path_params["id"], order)

    def _refund(self, record: dict[str, Any], body: dict[str, Any], type_: str) -> None:
        attributes = self._attributes(body, type_) if body else {}
        left = record["total"] - record["refunded_amount"]
        amount = attributes.get("amount", left)
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0 or amount > left:
            raise JsonApiError(
                422, f"The amount must be an integer between 1 and {left}.", "/data/attributes/amount"
            )
        record["refunded_amount"] += amount
        record["refunded"] = True
        record["refunded_at"] = iso(self.now)
        record["status"] = "refunded" if record["refunded_amount"] == record["total"] else "partial_refund"
        record["updated_at"] = iso(self.now)

    async def _refund_order(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        order_id = request.path_params["id"]
        order = self._found(self.orders, order_id)
        self._refund(order, body, "orders")
        await self.send("order_refunded", "orders", order_id, self.custom_data.get(order_id, {}))
        return self._document("orders", order_id, order)

    # ------------------------------------------------------------------ subscriptions

    def _subscription_attributes(self, subscription_id: int) -> dict[str, Any]:
        return _public(self.subscriptions[subscription_id])

    async def _get_subscription(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        subscription_id = request.path_params["id"]
        self._found(self.subscriptions, subscription_id)
        return self._document(
            "subscriptions", subscription_id, self._subscription_attributes(subscription_id)
        )

    async def _update_subscription(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        subscription_id = request.path_params["id"]
        record = self._found(self.subscriptions, subscription_id)
        attributes = self._attributes(body, "subscriptions")
        if record["status"] == "expired":
            raise JsonApiError(422, "An expired subscription cannot be updated.")
        names: list[str] = []
        if "variant_id" in attributes:
            variant = self.variants.get(int(attributes["variant_id"]))
            if variant is None or not variant.is_subscription:
                raise JsonApiError(422, "The selected variant is invalid.", "/data/attributes/variant_id")
            old = record["_unit"] * record["first_subscription_item"]["quantity"]
            record["variant_id"] = variant.id
            record["variant_name"] = variant.name
            record["first_subscription_item"]["price_id"] = variant.id
            record["_unit"] = variant.price
            new = variant.price * record["first_subscription_item"]["quantity"]
            self._prorate(subscription_id, attributes, new - old)
            names.append("subscription_plan_changed")
        if "pause" in attributes:
            pause = attributes["pause"]
            if pause is None:
                record["pause"], record["status"] = None, "active"
                names.append("subscription_unpaused")
            else:
                if not isinstance(pause, dict) or pause.get("mode") not in ("void", "free"):
                    raise JsonApiError(422, "pause.mode must be void or free.", "/data/attributes/pause/mode")
                record["pause"] = {"mode": pause["mode"], "resumes_at": pause.get("resumes_at")}
                record["status"] = "paused"
                names.append("subscription_paused")
        if attributes.get("cancelled") is False and record["cancelled"]:
            record["cancelled"], record["status"], record["ends_at"] = False, "active", None
            names.append("subscription_resumed")
        record["status_formatted"] = record["status"].replace("_", " ").capitalize()
        record["updated_at"] = iso(self.now)
        custom = self.custom_data.get(subscription_id, {})
        await self.send("subscription_updated", "subscriptions", subscription_id, custom)
        for name in names:
            await self.send(name, "subscriptions", subscription_id, custom)
        return self._document(
            "subscriptions", subscription_id, self._subscription_attributes(subscription_id)
        )

    def _prorate(self, subscription_id: int, attributes: dict[str, Any], difference: int) -> None:
        if attributes.get("disable_prorations") or difference <= 0:
            return
        if attributes.get("invoice_immediately"):
            self.pending_invoice = self._invoice(subscription_id, difference, "updated")

    async def _cancel_subscription(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        subscription_id = request.path_params["id"]
        record = self._found(self.subscriptions, subscription_id)
        if record["status"] == "expired":
            raise JsonApiError(422, "An expired subscription cannot be cancelled.")
        record["cancelled"] = True
        record["status"] = "cancelled"
        record["status_formatted"] = "Cancelled"
        record["ends_at"] = record["renews_at"]
        record["updated_at"] = iso(self.now)
        custom = self.custom_data.get(subscription_id, {})
        await self.send("subscription_updated", "subscriptions", subscription_id, custom)
        await self.send("subscription_cancelled", "subscriptions", subscription_id, custom)
        return self._document(
            "subscriptions", subscription_id, self._subscription_attributes(subscription_id)
        )

    async def _update_item(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        item_id = request.path_params["id"]
        attributes = self._attributes(body, "subscription-items")
        for subscription_id, record in self.subscriptions.items():
            item = record["first_subscription_item"]
            if item["id"] != item_id:
                continue
            quantity = attributes.get("quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                raise JsonApiError(422, "The quantity must be at least 1.", "/data/attributes/quantity")
            difference = record["_unit"] * (quantity - item["quantity"])
            item["quantity"] = quantity
            item["updated_at"] = record["updated_at"] = iso(self.now)
            self._prorate(subscription_id, attributes, difference)
            await self.send(
                "subscription_updated",
                "subscriptions",
                subscription_id,
                self.custom_data.get(subscription_id, {}),
            )
            return self._document("subscription-items", item_id, dict(item))
        raise JsonApiError(404, "Not found.")

    async def renew(self, subscription_id: int) -> int:
        """The period ends: a renewal invoice is paid, the subscription renews. The invoice id."""
        record = self.subscriptions[subscription_id]
        variant = self.variants[record["variant_id"]]
        custom = self.custom_data.get(subscription_id, {})
        self.now = datetime.fromisoformat(record["renews_at"].replace("Z", "+00:00"))
        if record["cancelled"]:
            record["status"], record["status_formatted"] = "expired", "Expired"
            record["updated_at"] = iso(self.now)
            await self.send("subscription_updated", "subscriptions", subscription_id, custom)
            await self.send("subscription_expired", "subscriptions", subscription_id, custom)
            return 0
        item = record["first_subscription_item"]
        usage = sum(
            usage["quantity"]
            for usage in self.usage_records.values()
            if usage["subscription_item_id"] == item["id"]
        )
        total = record["_unit"] * (usage if variant.usage_based else item["quantity"])
        invoice_id = self._invoice(subscription_id, total, "renewal")
        record["renews_at"] = iso(add_interval(self.now, variant.interval or "month", variant.interval_count))
        record["updated_at"] = iso(self.now)
        await self.send("subscription_payment_success", "subscription-invoices", invoice_id, custom)
        await self.send("subscription_updated", "subscriptions", subscription_id, custom)
        return invoice_id

    async def send_pending_invoice(self, subscription_id: int) -> None:
        """Announce the proration invoice an ``invoice_immediately`` change made."""
        invoice_id = self.pending_invoice
        custom = self.custom_data.get(subscription_id, {})
        await self.send("subscription_payment_success", "subscription-invoices", invoice_id, custom)

    # ------------------------------------------------------------------ invoices

    def _invoice(self, subscription_id: int, total: int, reason: str) -> int:
        invoice_id = next(self._ids)
        record = self.subscriptions[subscription_id]
        self.invoices[invoice_id] = {
            "store_id": self.store_id,
            "subscription_id": subscription_id,
            "customer_id": record["customer_id"],
            "user_name": record["user_name"],
            "user_email": record["user_email"],
            "billing_reason": reason,
            "card_brand": "visa",
            "card_last_four": "4242",
            "currency": self.currency,
            "currency_rate": "1.00000000",
            "status": "paid",
            "status_formatted": "Paid",
            "refunded": False,
            "refunded_at": None,
            "subtotal": total,
            "discount_total": 0,
            "tax": 0,
            "tax_inclusive": False,
            "total": total,
            "refunded_amount": 0,
            "urls": {"invoice_url": f"{self.base_url}/invoices/{invoice_id}"},
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
            "test_mode": True,
        }
        return invoice_id

    async def _get_invoice(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        invoice = self._found(self.invoices, request.path_params["id"])
        return self._document("subscription-invoices", request.path_params["id"], invoice)

    async def _refund_invoice(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        invoice_id = request.path_params["id"]
        invoice = self._found(self.invoices, invoice_id)
        self._refund(invoice, body, "subscription-invoices")
        custom = self.custom_data.get(invoice["subscription_id"], {})
        await self.send("subscription_payment_refunded", "subscription-invoices", invoice_id, custom)
        return self._document("subscription-invoices", invoice_id, invoice)

    # ------------------------------------------------------------------ usage

    async def _create_usage(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        attributes = self._attributes(body, "usage-records")
        item_id = self._related_id(body, "subscription-item")
        quantity = attributes.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise JsonApiError(422, "The quantity must be a positive integer.", "/data/attributes/quantity")
        action = attributes.get("action", "increment")
        if action not in ("increment", "set"):
            raise JsonApiError(422, "The action must be increment or set.", "/data/attributes/action")
        if not any(s["first_subscription_item"]["id"] == item_id for s in self.subscriptions.values()):
            raise JsonApiError(404, "Subscription item not found.", "/data/relationships/subscription-item")
        usage_id = next(self._ids)
        self.usage_records[usage_id] = {
            "subscription_item_id": item_id,
            "quantity": quantity,
            "action": action,
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
        }
        return self._document("usage-records", usage_id, self.usage_records[usage_id])

    async def _list_usage(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        item = request.query_params.get("filter[subscription_item_id]")
        items = [
            (id_, record)
            for id_, record in self.usage_records.items()
            if item is None or str(record["subscription_item_id"]) == item
        ]
        return self._list("usage-records", items, request)

    async def _current_usage(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        item_id = request.path_params["id"]
        total = sum(
            r["quantity"] for r in self.usage_records.values() if r["subscription_item_id"] == item_id
        )
        return {"jsonapi": {"version": "1.0"}, "meta": {"quantity": total, "interval_unit": "month"}}

    # ------------------------------------------------------------------ webhooks

    async def _create_webhook(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        attributes = self._attributes(body, "webhooks")
        self._related_id(body, "store")
        url, events, secret = attributes.get("url"), attributes.get("events"), attributes.get("secret")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise JsonApiError(422, "The url must be a valid URL.", "/data/attributes/url")
        if not isinstance(events, list) or not events:
            raise JsonApiError(422, "The events field is required.", "/data/attributes/events")
        if not isinstance(secret, str) or len(secret) < 6:
            raise JsonApiError(422, "The secret must be at least 6 characters.", "/data/attributes/secret")
        webhook_id = next(self._ids)
        self.webhooks[webhook_id] = {
            "store_id": self.store_id,
            "url": url,
            "events": events,
            "last_sent_at": None,
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
            "test_mode": True,
            "_secret": secret,
        }
        return self._document("webhooks", webhook_id, _public(self.webhooks[webhook_id]))

    async def _list_webhooks(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._list("webhooks", [(i, _public(w)) for i, w in self.webhooks.items()], request)

    def _body(self, name: str, type_: str, id_: int, custom: dict[str, Any]) -> bytes:
        table = {
            "orders": self.orders,
            "subscriptions": self.subscriptions,
            "subscription-invoices": self.invoices,
        }
        meta: dict[str, Any] = {"test_mode": True, "event_name": name, "webhook_id": "hook-1"}
        if custom:
            meta["custom_data"] = custom
        payload = {"meta": meta, "data": self._resource(type_, id_, _public(table[type_][id_]))}
        # Lemon Squeezy escapes slashes; the signature covers these exact bytes.
        return json.dumps(payload).replace("/", "\\/").encode()

    async def send(self, name: str, type_: str, id_: int, custom: dict[str, Any]) -> None:
        """Sign and keep (and deliver, when :attr:`deliver` is set) an event on the object's state."""
        body = self._body(name, type_, id_, custom)
        headers = {
            "Content-Type": "application/json",
            "X-Event-Name": name,
            "X-Signature": hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest(),
        }
        self.sent.append((headers, body))
        self.outbox.append((headers, body))
        if self.deliver is not None and self.deliver_at_once:
            await self.flush()

    async def flush(self) -> int:
        """Deliver every event not delivered yet, in order; how many."""
        assert self.deliver is not None, "set deliver first"
        count = 0
        while self.outbox:
            headers, body = self.outbox.pop(0)
            await self.deliver(headers, body)
            count += 1
        return count


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A record's attributes without the server's private bookkeeping (keys starting with ``_``)."""
    return {key: value for key, value in record.items() if not key.startswith("_")}


class _LosingTransport(httpx.AsyncBaseTransport):
    """Into the ASGI app; a request listed in ``lose_answers`` is handled and then its answer lost,
    one listed in ``refuse_connections`` is refused before it arrives."""

    def __init__(self, server: LemonSqueezyServer) -> None:
        self._server = server
        self._inner = httpx.ASGITransport(app=server.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path)
        if key in self._server.refuse_connections:
            self._server.refuse_connections.discard(key)
            raise httpx.ConnectError("the connection was refused", request=request)
        response = await self._inner.handle_async_request(request)
        if key in self._server.lose_answers:
            self._server.lose_answers.discard(key)
            await response.aread()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response
