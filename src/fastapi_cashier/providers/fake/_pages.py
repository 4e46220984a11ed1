"""The HTML of the fake provider's hosted pages: checkout, 3-D Secure challenge, "closed", and the portal.

Each function returns a complete HTML5 document with inline CSS and no external assets, so the
pages work offline and in browser tests. Every interpolated value is HTML-escaped here; callers
pass plain text. The router serves these pages; :class:`~fastapi_cashier.providers.fake.provider.FakeProvider`
decides which one to render.

Element ids are part of the contract with browser tests: ``pay``, ``decline`` and
``three-d-secure`` on the checkout page (plus ``plan``, ``price``, ``quantity`` and ``trial`` for
a subscription), ``authenticate`` and ``fail-authentication`` on the challenge page, and on the
portal page ``subscription-<id>`` rows with the ``quantity-<id>`` field, ``change-quantity-<id>``
and ``cancel-<id>`` buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Final

from ...pricing import PriceSpec, price
from ...statuses import PricingModel, SubscriptionStatus
from ..base import PlanRef
from .state import FakeSubscription

__all__ = [
    "authentication_page",
    "checkout_page",
    "closed_page",
    "every",
    "portal_page",
    "subscription_terms",
]

_CHANGEABLE: Final = frozenset(
    {SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}
)

_STYLE: Final = """
:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; background: #f4f5f7; color: #1f2328; }
main { max-width: 26rem; margin: 4rem auto; padding: 2rem; background: #fff; border-radius: 12px;
       box-shadow: 0 2px 12px rgba(0, 0, 0, .08); }
.banner { margin: 0 0 1.5rem; padding: .5rem .75rem; border-radius: 6px; background: #fff8c5;
          font-size: .85rem; }
h1 { margin: 0 0 .25rem; font-size: 1.25rem; }
.amount { margin: .5rem 0 0; font-size: 2rem; font-weight: 600; }
.currency { color: #59636e; font-size: .9rem; }
.description { margin: 1rem 0; }
.notice { padding: .5rem .75rem; border-radius: 6px; background: #ffebe9; color: #82071e; }
form { display: grid; gap: .75rem; margin-top: 1.5rem; }
button { padding: .75rem 1rem; border: 1px solid #d1d9e0; border-radius: 6px; background: #f6f8fa;
         font: inherit; cursor: pointer; }
button.primary { border-color: #1f6feb; background: #1f6feb; color: #fff; }
main.wide { max-width: 48rem; }
table { width: 100%; border-collapse: collapse; margin-top: 1rem; }
th, td { padding: .5rem; border-bottom: 1px solid #d1d9e0; text-align: left; vertical-align: top; }
td form { display: flex; gap: .5rem; margin: 0 0 .5rem; }
input[type=number] { width: 4.5rem; padding: .5rem; border: 1px solid #d1d9e0; border-radius: 6px;
                     font: inherit; }
"""

_BANNER: Final = '<p class="banner">Fake provider: a test page, no real money moves.</p>'


def _document(title: str, body: str, *, wide: bool = False) -> str:
    """Wrap already-escaped ``body`` markup in a full HTML5 document titled ``title`` (plain text)."""
    main = '<main class="wide">' if wide else "<main>"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n"
        f"<style>{_STYLE}</style>\n"
        "</head>\n"
        "<body>\n"
        f"{main}\n{_BANNER}\n{body}\n</main>\n"
        "</body>\n"
        "</html>\n"
    )


def _summary(amount: str, currency: str, description: str | None) -> str:
    parts = [
        f'<p class="amount" id="amount">{escape(amount)}</p>',
        f'<p class="currency" id="currency">Currency: {escape(currency)}</p>',
    ]
    if description:
        parts.append(f'<p class="description" id="description">{escape(description)}</p>')
    return "\n".join(parts)


def checkout_page(
    *,
    amount: str,
    currency: str,
    description: str | None,
    action_url: str,
    notice: str | None = None,
    details: Sequence[tuple[str, str]] = (),
) -> str:
    """The hosted checkout page with Pay, Decline and 3-D Secure buttons.

    Args:
        amount: The formatted amount due now, e.g. ``"10.50 EUR"``.
        currency: The ISO 4217 code.
        description: What is being paid for, if anything.
        action_url: Where the form posts ``outcome=succeeded|declined|requires_action``.
        notice: A message about the previous attempt (a decline), shown above the form.
        details: ``(element id, text)`` lines of a subscription's terms (plan, price per
            interval, quantity, trial); with details the page is headed "Subscribe".

    Returns:
        A complete HTML5 document.
    """
    notice_html = f'<p class="notice" id="notice" role="alert">{escape(notice)}</p>\n' if notice else ""
    details_html = "".join(
        f'<p class="detail" id="{escape(element_id)}">{escape(text)}</p>\n' for element_id, text in details
    )
    heading = "Subscribe" if details else "Pay"
    body = (
        f"<h1>{heading}</h1>\n"
        f"{details_html}"
        f"{_summary(amount, currency, description)}\n"
        f"{notice_html}"
        f'<form method="post" action="{escape(action_url)}">\n'
        '<button type="submit" class="primary" id="pay" name="outcome" value="succeeded">Pay</button>\n'
        '<button type="submit" id="decline" name="outcome" value="declined">Decline</button>\n'
        '<button type="submit" id="three-d-secure" name="outcome" value="requires_action">'
        "3-D Secure</button>\n"
        "</form>"
    )
    return _document(f"{heading} {amount}", body)


def authentication_page(*, amount: str, currency: str, description: str | None, action_url: str) -> str:
    """The 3-D Secure challenge page: complete or fail the authentication.

    Args:
        amount: The formatted amount, e.g. ``"10.50 EUR"``.
        currency: The ISO 4217 code.
        description: What is being paid for, if anything.
        action_url: Where the form posts ``result=succeeded|failed``.

    Returns:
        A complete HTML5 document.
    """
    body = (
        "<h1>3-D Secure authentication</h1>\n"
        "<p>Your bank asks you to confirm this payment.</p>\n"
        f"{_summary(amount, currency, description)}\n"
        f'<form method="post" action="{escape(action_url)}">\n'
        '<button type="submit" class="primary" id="authenticate" name="result" value="succeeded">'
        "Complete authentication</button>\n"
        '<button type="submit" id="fail-authentication" name="result" value="failed">'
        "Fail authentication</button>\n"
        "</form>"
    )
    return _document("3-D Secure authentication", body)


def closed_page(*, title: str, message: str) -> str:
    """A page without any form, for a session that can no longer be paid or authenticated.

    Args:
        title: The heading, e.g. ``"Checkout complete"``.
        message: One or two sentences saying why nothing can be done here.

    Returns:
        A complete HTML5 document.
    """
    body = f'<h1 id="closed">{escape(title)}</h1>\n<p>{escape(message)}</p>'
    return _document(title, body)


def every(plan: PlanRef) -> str:
    """``"month"`` or ``"3 months"``: the plan's billing interval in words."""
    unit = plan.interval.value
    return unit if plan.interval_count == 1 else f"{plan.interval_count} {unit}s"


def subscription_terms(plan: PlanRef, quantity: int) -> list[tuple[str, str]]:
    """A subscription's terms for :func:`checkout_page`: plan, price per interval, quantity, trial."""
    name = f"{plan.product_name}: {plan.name}" if plan.product_name else plan.name
    spec = PriceSpec.from_plan_ref(plan)
    if plan.pricing_model is PricingModel.METERED:
        rate = "" if plan.tiers else f" at {plan.unit_amount.format()} per unit"
        terms = f"Billed for usage{rate}, every {every(plan)}"
    else:
        terms = f"{price(spec, quantity=quantity).total.format()} per {every(plan)}"
        if plan.pricing_model is PricingModel.PER_UNIT:
            terms = f"{quantity} \N{MULTIPLICATION SIGN} {plan.unit_amount.format()} = {terms}"
    rows = [("plan", name), ("price", terms), ("quantity", f"Quantity: {quantity}")]
    if plan.trial_days > 0:
        rows.append(("trial", f"{plan.trial_days}-day free trial: nothing is charged until it ends"))
    return rows


def _portal_row(sub: FakeSubscription, action_url: Callable[[str, str], str]) -> str:
    ident = escape(sub.id)
    forms = []
    if sub.status in _CHANGEABLE and not sub.paused:
        forms.append(
            f'<form method="post" action="{escape(action_url(sub.id, "quantity"))}">'
            f'<input type="number" id="quantity-{ident}" name="quantity" min="1" value="{sub.quantity}" '
            'aria-label="Quantity" required>'
            f'<button type="submit" id="change-quantity-{ident}">Change quantity</button></form>'
        )
        if not sub.cancel_at_period_end:
            forms.append(
                f'<form method="post" action="{escape(action_url(sub.id, "cancel"))}">'
                f'<button type="submit" id="cancel-{ident}">Cancel at period end</button></form>'
            )
    note = "<br><small>Cancels at the end of the period</small>" if sub.cancel_at_period_end else ""
    period_end = sub.current_period_end.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<tr id="subscription-{ident}"><td>{escape(sub.plan.name)}</td><td>{sub.quantity}</td>'
        f"<td>{escape(sub.status.value)}{note}</td><td>{period_end}</td><td>{''.join(forms)}</td></tr>"
    )


def portal_page(
    *,
    customer: str,
    subscriptions: Sequence[FakeSubscription],
    action_url: Callable[[str, str], str],
    return_url: str | None = None,
) -> str:
    """The customer portal: the customer's subscriptions, with forms to change or cancel them.

    Args:
        customer: Who the portal is for (a name, email or id).
        subscriptions: The customer's subscriptions, oldest first.
        action_url: ``(subscription id, "quantity" | "cancel")`` -> where that form posts.
        return_url: The host app's page to go back to, if known.

    Returns:
        A complete HTML5 document.
    """
    if subscriptions:
        listing = (
            "<table>\n<thead><tr><th>Plan</th><th>Quantity</th><th>Status</th><th>Period ends</th>"
            "<th></th></tr></thead>\n<tbody>\n"
            + "\n".join(_portal_row(sub, action_url) for sub in subscriptions)
            + "\n</tbody>\n</table>"
        )
    else:
        listing = '<p id="no-subscriptions">No subscriptions yet.</p>'
    back = f'\n<p><a id="return" href="{escape(return_url)}">Return</a></p>' if return_url else ""
    body = f"<h1>Your subscriptions</h1>\n<p>{escape(customer)}</p>\n{listing}{back}"
    return _document("Billing portal", body, wide=True)
