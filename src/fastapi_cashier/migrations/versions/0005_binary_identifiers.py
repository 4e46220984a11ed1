"""binary identifiers

Identifier columns (subjects, provider ids, event ids, idempotency keys, references) compare
byte for byte on MariaDB and MySQL, as they already do on SQLite and PostgreSQL: a binary
collation without padding, so ``ALICE``, ``Àlice`` and ``alice `` are not ``alice``. Other
databases are untouched.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, length, nullable) of every identifier column, as of this revision.
IDENTIFIERS: tuple[tuple[str, str, int, bool], ...] = (
    ("cashier_customers", "external_id", 255, False),
    ("cashier_customer_accounts", "provider", 40, False),
    ("cashier_customer_accounts", "provider_customer_id", 255, False),
    ("cashier_credit_transactions", "reference", 255, True),
    ("cashier_credit_transactions", "idempotency_key", 255, True),
    ("cashier_plan_features", "key", 100, False),
    ("cashier_provider_objects", "provider", 40, False),
    ("cashier_provider_objects", "object_type", 40, False),
    ("cashier_provider_objects", "provider_id", 255, False),
    ("cashier_checkout_sessions", "provider", 40, False),
    ("cashier_checkout_sessions", "provider_session_id", 255, True),
    ("cashier_checkout_sessions", "reference", 255, True),
    ("cashier_payments", "provider", 40, False),
    ("cashier_payments", "provider_payment_id", 255, True),
    ("cashier_payments", "reference", 255, True),
    ("cashier_refunds", "provider", 40, False),
    ("cashier_refunds", "provider_refund_id", 255, True),
    ("cashier_subscriptions", "provider", 40, False),
    ("cashier_subscriptions", "provider_subscription_id", 255, True),
    ("cashier_usage_records", "idempotency_key", 255, False),
    ("cashier_invoices", "number", 40, True),
    ("cashier_invoices", "provider", 40, True),
    ("cashier_invoices", "provider_invoice_id", 255, True),
    ("cashier_status_changes", "provider_event_id", 255, True),
    ("cashier_webhook_events", "provider", 40, False),
    ("cashier_webhook_events", "event_id", 255, False),
    ("cashier_webhook_events", "object_provider_id", 255, True),
    ("cashier_idempotency_keys", "principal", 255, False),
    ("cashier_idempotency_keys", "key", 255, False),
    ("cashier_sequences", "name", 40, False),
    ("cashier_rate_limit_counters", "scope", 40, False),
)


def _binary_collation() -> str | None:
    dialect = op.get_bind().dialect
    if dialect.name not in ("mysql", "mariadb"):
        return None
    return "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"


def upgrade() -> None:
    collation = _binary_collation()
    if collation is None:
        return
    for table, column, length, nullable in IDENTIFIERS:
        op.alter_column(
            table,
            column,
            existing_type=sa.String(length),
            type_=mysql.VARCHAR(length, charset="utf8mb4", collation=collation),
            existing_nullable=nullable,
        )


def downgrade() -> None:
    if _binary_collation() is None:
        return
    for table, column, length, nullable in IDENTIFIERS:
        op.alter_column(
            table,
            column,
            existing_type=sa.String(length),
            type_=mysql.VARCHAR(length, charset="utf8mb4"),
            existing_nullable=nullable,
        )
