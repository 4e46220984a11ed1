"""The PayPal adapter: Orders v2, Payments v2, Billing Subscriptions v1, Catalog Products v1.

Built on the library's own asynchronous client (:class:`PayPalClient`); no PayPal SDK is needed.
"""

from ._amounts import NO_DECIMAL_CURRENCIES, PAYPAL_CURRENCIES, from_paypal_amount, to_paypal_amount
from ._client import LIVE_API_BASE, SANDBOX_API_BASE, PayPalClient
from .provider import PAYPAL_CAPABILITIES, PayPalProvider

__all__ = [
    "LIVE_API_BASE",
    "NO_DECIMAL_CURRENCIES",
    "PAYPAL_CAPABILITIES",
    "PAYPAL_CURRENCIES",
    "SANDBOX_API_BASE",
    "PayPalClient",
    "PayPalProvider",
    "from_paypal_amount",
    "to_paypal_amount",
]
