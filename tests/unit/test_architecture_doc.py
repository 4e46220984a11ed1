"""docs/architecture.rst tells the truth: its example adapter runs, its table matches the adapters."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from fastapi_cashier.money import Money
from fastapi_cashier.providers import base
from fastapi_cashier.providers.fake import FakeProvider
from fastapi_cashier.providers.manual import ManualProvider
from fastapi_cashier.providers.stripe import StripeProvider

PAGE = Path(__file__).resolve().parents[2] / "docs" / "architecture.rst"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not PAGE.exists(), reason="the docs are not in this checkout"),
]


def _python_blocks() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", text)
    return [re.sub(r"^   ", "", block, flags=re.MULTILINE) for block in blocks]


def _table_rows() -> dict[str, tuple[str, str, str]]:
    """Part name -> (fake, manual, stripe) as the page's protocol table says."""
    text = PAGE.read_text(encoding="utf-8")
    rows = re.findall(
        r"   \* - ``(\w+)``.*?\n(?:     - .*\n|       .*\n)*?"
        r"     - (yes|--)\n     - (yes|--)\n     - (yes|--)\n",
        text,
    )
    return {name: (fake, manual, stripe) for name, fake, manual, stripe in rows}


async def test_the_example_adapter_runs_and_passes_the_start_up_check() -> None:
    [block] = _python_blocks()
    namespace: dict[str, object] = {}
    exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102 - the page's own code
    adapter = namespace["CashDeskProvider"]()  # type: ignore[operator]
    assert isinstance(adapter, base.RefundProvider)
    assert isinstance(adapter, base.ObjectLookup)
    assert not isinstance(adapter, base.WebhookReceiver)
    request = base.RefundRequest(
        refund_id=uuid.uuid4(),
        idempotency_key="refund-doc",
        provider_payment_id="pay_1",
        amount=Money(300, "EUR"),
    )
    made = await adapter.refund(request)
    found = await adapter.lookup("refund", str(request.refund_id))
    assert isinstance(found, base.RefundSnapshot)
    assert (found.provider_refund_id, found.amount) == (made.provider_refund_id, Money(300, "EUR"))
    assert await adapter.lookup("refund", str(uuid.uuid4())) is None


async def test_the_protocol_table_says_which_adapter_implements_what() -> None:
    fake = FakeProvider(webhook_secret="whsec_doc")
    stripe = StripeProvider(api_key="sk_test_doc", webhook_secrets=["whsec_doc"])
    adapters = (fake, ManualProvider(), stripe)
    rows = _table_rows()
    parts = {
        "PaymentProvider": base.PaymentProvider,
        "WebhookReceiver": base.WebhookReceiver,
        "CheckoutProvider": base.CheckoutProvider,
        "CheckoutCompleter": base.CheckoutCompleter,
        "RefundProvider": base.RefundProvider,
        "SubscriptionProvider": base.SubscriptionProvider,
        "PauseProvider": base.PauseProvider,
        "UsageProvider": base.UsageProvider,
        "PortalProvider": base.PortalProvider,
        "CatalogProvider": base.CatalogProvider,
        "ObjectLookup": base.ObjectLookup,
        "RouteContributor": base.RouteContributor,
    }
    assert set(rows) == set(parts)
    for name, part in parts.items():
        said = rows[name]
        actual = tuple("yes" if isinstance(adapter, part) else "--" for adapter in adapters)
        assert said == actual, name
    for adapter in adapters:
        base.check_adapter(adapter)
    await stripe.aclose()
