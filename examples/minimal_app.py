"""A host app: payments at /billing, a guarded route, a hook. Run it with settings from the env:

export PAYMENTS_AUTH__JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export PAYMENTS_FAKE__WEBHOOK_SECRET=whsec_dev PAYMENTS_DEFAULT_PROVIDER=fake
uvicorn minimal_app:app --app-dir examples  # GET /hello with: fastapi-cashier token alice

On PayPal instead of the fake provider, by the environment alone (docs/paypal.rst):
PAYMENTS_PAYPAL__CLIENT_ID, PAYMENTS_PAYPAL__CLIENT_SECRET, PAYMENTS_PAYPAL__WEBHOOK_ID,
PAYMENTS_PAYPAL__MODE=sandbox and PAYMENTS_DEFAULT_PROVIDER=paypal.

On Lemon Squeezy instead, by configuration alone (docs/lemonsqueezy.rst):
export PAYMENTS_LEMONSQUEEZY__API_KEY=... PAYMENTS_LEMONSQUEEZY__STORE_ID=...
export PAYMENTS_LEMONSQUEEZY__WEBHOOK_SECRETS=... PAYMENTS_DEFAULT_PROVIDER=lemonsqueezy
"""

import logging
from typing import Annotated

from fastapi import Depends, FastAPI

from fastapi_cashier import DomainEvent, PaymentsRouter, PaymentsSettings
from fastapi_cashier.db.models import Customer

logger = logging.getLogger(__name__)
app = FastAPI()
payments = PaymentsRouter(PaymentsSettings())
app.include_router(payments, prefix="/billing")


@app.get("/hello")
async def hello(customer: Annotated[Customer, Depends(payments.current_customer)]) -> dict[str, str]:
    return {"message": f"Hello, {customer.email or customer.external_id}!"}


@payments.on("payment.succeeded")
async def log_payment(event: DomainEvent) -> None:
    logger.info("payment %s succeeded: %s %s", event.entity_id, event.data["amount"], event.data["currency"])
