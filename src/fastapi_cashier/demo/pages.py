"""The HTML pages of the demo shop (:mod:`fastapi_cashier.demo`).

Plain functions from already-loaded rows to complete HTML5 documents: no database access, no
FastAPI. Every value that comes from a row or a URL is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Final

from ..db.models import Invoice, Payment, Subscription
from ..money import Money

__all__ = [
    "AccountView",
    "ShopOffer",
    "account_page",
    "home_page",
    "payments_page",
]


@dataclass(frozen=True, slots=True)
class ShopOffer:
    """What the shop window sells: the ticket and the Team plan's terms."""

    customer: str
    ticket_price: Money
    seat_price: Money
    trial_days: int
    max_seats: int
    requests_per_minute: int
    credits_per_period: int


@dataclass(frozen=True, slots=True)
class AccountView:
    """Everything the account page shows, loaded by the route.

    Attributes:
        customer: The demo customer's ``external_id``.
        subscriptions: The customer's subscriptions with their plan names, newest first.
        invoices: The customer's invoices (with their lines), newest first.
        credits: The credit balance.
        clock: The fake provider's time, or ``None`` when the fake provider is off.
        clock_step_days: How far the "advance the clock" button moves it.
        notice: A message to show above everything else, if any.
    """

    customer: str
    subscriptions: Sequence[tuple[Subscription, str]]
    invoices: Sequence[Invoice]
    credits: int
    clock: datetime | None
    clock_step_days: int
    notice: str | None = None


_STYLE: Final = """
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; background: #f4f5f7; color: #1f2328; line-height: 1.5; }
main { max-width: 52rem; margin: 3rem auto; padding: 2rem 2.5rem; background: #fff; border-radius: 12px;
       box-shadow: 0 2px 12px rgba(0, 0, 0, .08); }
.banner { margin: 0 0 1.5rem; padding: .5rem .75rem; border-radius: 6px; background: #fff8c5;
          font-size: .85rem; }
nav { margin: 0 0 1rem; font-size: .9rem; }
nav a { margin-right: 1rem; }
h1 { margin: 0 0 .5rem; font-size: 1.6rem; }
h2 { margin: 2rem 0 .5rem; font-size: 1.1rem; }
code { padding: .1rem .3rem; border-radius: 4px; background: #eff1f3; font-size: .9em; }
ol li { margin: .25rem 0; }
.product { display: flex; align-items: center; justify-content: space-between; gap: 1rem;
           margin: 1.5rem 0; padding: 1rem 1.25rem; border: 1px solid #d1d9e0; border-radius: 8px; }
.product p { margin: 0; }
.product form { display: flex; align-items: center; gap: .5rem; }
.terms { color: #59636e; font-size: .9rem; }
.price { font-size: 1.4rem; font-weight: 600; }
input[type=number] { width: 4.5rem; padding: .6rem; border: 1px solid #d1d9e0; border-radius: 6px;
                     font: inherit; }
button { padding: .75rem 1.25rem; border: 1px solid #1f6feb; border-radius: 6px; background: #1f6feb;
         color: #fff; font: inherit; font-weight: 600; cursor: pointer; }
button.secondary { background: #fff; color: #1f6feb; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
th, td { padding: .5rem; border-bottom: 1px solid #d1d9e0; text-align: left; vertical-align: top; }
th.amount, td.amount { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td ul { margin: 0; padding-left: 1rem; font-size: .9rem; }
#invoices td:nth-child(-n+2) { white-space: nowrap; }
.status { padding: .1rem .5rem; border-radius: 999px; background: #eff1f3; font-size: .85rem; }
.status-succeeded, .status-active, .status-paid { background: #dafbe1; color: #116329; }
.status-trialing { background: #ddf4ff; color: #0969da; }
.status-failed, .status-canceled, .status-expired, .status-uncollectible, .status-void
  { background: #ffebe9; color: #82071e; }
.status-requires_action, .status-pending, .status-processing, .status-past_due, .status-paused,
.status-incomplete, .status-open { background: #fff8c5; color: #7d4e00; }
.empty { color: #59636e; }
.notice { padding: .75rem 1rem; border-radius: 6px; background: #ddf4ff; }
"""

_BANNER: Final = (
    '<p class="banner">Demo shop: payments go through the fake provider; no real money moves.</p>'
)


def _document(title: str, body: str) -> str:
    """A complete HTML5 page; ``title`` is plain text, ``body`` already-escaped markup."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        f"<style>{_STYLE}</style>\n"
        "</head>\n"
        "<body>\n"
        f"<main>\n{_BANNER}\n{body}\n</main>\n"
        "</body>\n"
        "</html>\n"
    )


def _euros(money: Money) -> str:
    """``€9.00`` for EUR, ``9.00 USD`` otherwise."""
    return f"€{money.to_decimal()}" if money.currency == "EUR" else money.format()


def _when(moment: datetime | None) -> str:
    return escape(moment.strftime("%Y-%m-%d %H:%M UTC")) if moment is not None else "—"


def _period(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    return escape(f"{start:%Y-%m-%d} to {end:%Y-%m-%d}")


def _status(status: str) -> str:
    return f'<span class="status status-{escape(status)}">{escape(status)}</span>'


# ------------------------------------------------------------------------------ the shop window


def home_page(
    *,
    offer: ShopOffer,
    buy_url: str,
    subscribe_url: str,
    account_url: str,
    api_url: str,
    billing_url: str,
    docs_url: str | None,
) -> str:
    """The shop window: the concert ticket, the Team plan, and where to look next."""
    price = escape(_euros(offer.ticket_price))
    seat = escape(_euros(offer.seat_price))
    docs = ""
    if docs_url:
        link = f'<a href="{escape(docs_url)}">{escape(docs_url)}</a>'
        docs = f"<li>the interactive API documentation at {link};</li>\n"
    customer = escape(offer.customer)
    body = (
        f'<nav><a href="{escape(account_url)}" id="account-link">Account</a></nav>\n'
        "<h1>fastapi-cashier demo shop</h1>\n"
        "<p>This small FastAPI app mounts <code>PaymentsRouter</code> at <code>/billing</code> with the "
        "in-process <em>fake</em> provider, so you can walk through a whole hosted checkout on your "
        "machine.</p>\n"
        '<div class="product">\n'
        "<div><p><strong>Concert ticket</strong></p>"
        f'<p class="price" id="price">{price}</p></div>\n'
        f'<form method="post" action="{escape(buy_url)}">\n'
        f'<button type="submit" id="buy">Buy a concert ticket ({price})</button>\n'
        "</form>\n"
        "</div>\n"
        '<div class="product" id="team">\n'
        "<div><p><strong>Team workspace</strong></p>"
        f'<p class="price" id="seat-price">{seat} per seat / month</p>'
        f'<p class="terms">{offer.trial_days}-day free trial; API access, '
        f"{offer.requests_per_minute} requests per minute, {offer.credits_per_period} credits per "
        "month.</p></div>\n"
        f'<form method="post" action="{escape(subscribe_url)}">\n'
        '<label for="seats">Seats</label>\n'
        f'<input type="number" id="seats" name="seats" min="1" max="{offer.max_seats}" value="1" '
        "required>\n"
        '<button type="submit" id="subscribe">Subscribe to Team</button>\n'
        "</form>\n"
        "</div>\n"
        "<h2>What happens when you buy</h2>\n"
        "<ol>\n"
        "<li>The server calls <code>payments.service()</code> and creates a checkout session for the demo "
        f"customer <code>{customer}</code>.</li>\n"
        "<li>Your browser is sent to the fake provider's hosted checkout page. Choose "
        "<em>Pay</em>, <em>Decline</em> or <em>3-D Secure</em>.</li>\n"
        "<li>The fake provider signs a webhook event and delivers it to "
        "<code>/billing/webhooks/fake</code>; the inbox verifies it and records the payment.</li>\n"
        "<li>You come back to this shop, which lists the customer's payments.</li>\n"
        "</ol>\n"
        "<h2>What happens when you subscribe</h2>\n"
        "<ol>\n"
        "<li>The server creates a subscription checkout for the <em>Team</em> plan and the seats you "
        "chose (<code>svc.checkout.create(customer, plan_id=..., quantity=seats, ...)</code>).</li>\n"
        f"<li>On the fake checkout page, <em>Pay</em> starts the {offer.trial_days}-day trial: nothing "
        "is charged today, and the subscription is <code>trialing</code>.</li>\n"
        f'<li>The <a href="{escape(account_url)}">account page</a> lists the subscription, its invoices '
        "and the credit balance. <em>Advance the clock</em> moves the fake provider's time past the "
        "trial: the first period is invoiced at seats &times; "
        f"{seat} and the subscription becomes <code>active</code>.</li>\n"
        f"<li><code>{escape(api_url)}</code> is a route of this shop guarded by "
        '<code>payments.require_feature("api_access")</code> and <code>payments.rate_limit()</code>: '
        f"402 before you subscribe, 200 afterwards, 429 after {offer.requests_per_minute} calls in "
        "one minute.</li>\n"
        "</ol>\n"
        "<h2>Explore the API</h2>\n"
        "<ul>\n"
        f'<li>the payments API under <a href="{escape(billing_url)}/health">{escape(billing_url)}</a>, '
        f'and the catalog at <a href="{escape(billing_url)}/plans">{escape(billing_url)}/plans</a>;</li>\n'
        f"{docs}"
        "<li>the terminal that runs <code>fastapi-cashier demo</code> printed a customer token, an admin "
        "token and <code>curl</code> commands to try.</li>\n"
        "</ul>"
    )
    return _document("fastapi-cashier demo shop", body)


# ------------------------------------------------------------------------------ payments


def _payment_row(payment: Payment) -> str:
    status = payment.status.value
    cells = [
        escape(payment.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")) if payment.created_at else "",
        escape(payment.description or ""),
        escape(payment.reference or ""),
        _status(status),
    ]
    amount = escape(Money(payment.amount, payment.currency).format())
    if payment.refunded_amount:
        refunded = Money(payment.refunded_amount, payment.currency).format()
        amount += f"<br><small>refunded {escape(refunded)}</small>"
    return (
        f'<tr class="payment" data-status="{escape(status)}">'
        + "".join(f"<td>{cell}</td>" for cell in cells)
        + f'<td class="amount">{amount}</td></tr>'
    )


def payments_page(
    *, title: str, message: str, customer: str, payments: Sequence[Payment], home_url: str
) -> str:
    """Where a one-off checkout returns: a message and the customer's recent payments."""
    if payments:
        rows = "\n".join(_payment_row(payment) for payment in payments)
        listing = (
            '<table id="payments">\n'
            "<thead><tr><th>Created</th><th>Description</th><th>Reference</th><th>Status</th>"
            '<th class="amount">Amount</th></tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody>\n"
            "</table>"
        )
    else:
        listing = '<p class="empty" id="payments">No payments yet.</p>'
    body = (
        f'<h1 id="title">{escape(title)}</h1>\n'
        f"<p>{escape(message)}</p>\n"
        f"<h2>Recent payments of <code>{escape(customer)}</code></h2>\n"
        f"{listing}\n"
        f'<p><a href="{escape(home_url)}" id="back">Back to the shop</a></p>'
    )
    return _document(title, body)


# ------------------------------------------------------------------------------ the account


def _subscription_row(subscription: Subscription, plan_name: str) -> str:
    status = subscription.status.value
    notes = []
    if subscription.cancel_at_period_end:
        notes.append("cancels at the period end")
    if subscription.paused:
        notes.append("paused")
    note = f"<br><small>{escape(', '.join(notes))}</small>" if notes else ""
    cells = [
        escape(plan_name) + note,
        _status(status),
        str(subscription.quantity),
        _when(subscription.trial_end),
        _when(subscription.current_period_end),
    ]
    return (
        f'<tr class="subscription" data-status="{escape(status)}" data-seats="{subscription.quantity}">'
        + "".join(f"<td>{cell}</td>" for cell in cells)
        + "</tr>"
    )


def _invoice_row(invoice: Invoice) -> str:
    status = invoice.status.value
    lines = "".join(
        f"<li>{escape(line.description)}: {escape(Money(line.amount, line.currency).format())}</li>"
        for line in invoice.lines
    )
    cells = [
        escape(invoice.number or "draft"),
        _period(invoice.period_start, invoice.period_end),
        _status(status),
        f"<ul>{lines}</ul>" if lines else "",
    ]
    total = escape(Money(invoice.total, invoice.currency).format())
    return (
        f'<tr class="invoice" data-status="{escape(status)}" data-total="{invoice.total}">'
        + "".join(f"<td>{cell}</td>" for cell in cells)
        + f'<td class="amount">{total}</td></tr>'
    )


def _table(element_id: str, headings: Sequence[str], rows: Sequence[str], empty: str) -> str:
    if not rows:
        return f'<p class="empty" id="{escape(element_id)}">{escape(empty)}</p>'
    head = "".join(
        f'<th class="amount">{escape(h[1:])}</th>' if h.startswith("$") else f"<th>{escape(h)}</th>"
        for h in headings
    )
    body = "\n".join(rows)
    table_id = escape(element_id)
    return f'<table id="{table_id}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def account_page(view: AccountView, *, advance_url: str, portal_url: str, home_url: str, api_url: str) -> str:
    """The demo customer's subscriptions, invoices and credits, with the clock and portal buttons."""
    subscriptions = _table(
        "subscriptions",
        ["Plan", "Status", "Seats", "Trial ends", "Period ends"],
        [_subscription_row(subscription, plan) for subscription, plan in view.subscriptions],
        "No subscriptions yet: subscribe to Team in the shop.",
    )
    invoices = _table(
        "invoices",
        ["Number", "Period", "Status", "Lines", "$Total"],
        [_invoice_row(invoice) for invoice in view.invoices],
        "No invoices yet.",
    )
    clock = (
        f'<p id="clock">The fake provider\'s clock: <strong>{_when(view.clock)}</strong>.</p>\n'
        if view.clock is not None
        else ""
    )
    step = view.clock_step_days
    notice = f'<p class="notice" id="notice" role="status">{escape(view.notice)}</p>\n' if view.notice else ""
    body = (
        f'<nav><a href="{escape(home_url)}" id="back">Back to the shop</a></nav>\n'
        f"<h1>Account of <code>{escape(view.customer)}</code></h1>\n"
        f"{notice}"
        "<h2>Subscriptions</h2>\n"
        f"{subscriptions}\n"
        "<h2>Invoices</h2>\n"
        f"{invoices}\n"
        "<h2>Credits</h2>\n"
        f'<p id="credits" data-balance="{view.credits}">Balance: <strong>{view.credits}</strong> credits '
        "(granted at the start of each billing period, expiring at its end).</p>\n"
        "<h2>Time and self-service</h2>\n"
        f"{clock}"
        '<div class="actions">\n'
        f'<form method="post" action="{escape(advance_url)}">'
        f'<button type="submit" id="advance-clock">Advance the clock {step} days</button></form>\n'
        f'<form method="post" action="{escape(portal_url)}">'
        '<button type="submit" class="secondary" id="open-portal">Open billing portal</button></form>\n'
        "</div>\n"
        "<p>Advancing the clock ends trials, renews periods and ends subscriptions set to cancel when "
        "their time comes, as a real provider would over days; its webhooks reach the inbox at once, and "
        "the shop then expires the credits whose period has ended. The portal is the fake provider's: "
        "change the seats or cancel at the period end there.</p>\n"
        f"<p>The fake provider keeps its subscriptions in memory: after a restart of the demo, earlier "
        f"subscriptions are still listed here but no longer renew. Try <code>{escape(api_url)}</code> "
        "with the customer token the demo printed.</p>"
    )
    return _document(f"Account of {view.customer}", body)
