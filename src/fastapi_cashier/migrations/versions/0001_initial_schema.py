"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 02:44:57.916383
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cashier_customers",
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_customers")),
        sa.UniqueConstraint("external_id", name=op.f("uq_cashier_customers_external_id")),
    )
    with op.batch_alter_table("cashier_customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_customers_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cashier_customers_email"), ["email"], unique=False)

    op.create_table(
        "cashier_idempotency_keys",
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column(
            "response_body",
            sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "completed_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_idempotency_keys")),
        sa.UniqueConstraint("principal", "key", name=op.f("uq_cashier_idempotency_keys_principal_key")),
    )
    with op.batch_alter_table("cashier_idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_idempotency_keys_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "cashier_products",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_products")),
    )
    op.create_table(
        "cashier_provider_objects",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.String(length=255), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_provider_objects")),
        sa.UniqueConstraint(
            "provider",
            "object_type",
            "provider_id",
            name=op.f("uq_cashier_provider_objects_provider_object_type_provider_id"),
        ),
    )
    with op.batch_alter_table("cashier_provider_objects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_provider_objects_object_type_object_id_provider"),
            ["object_type", "object_id", "provider"],
            unique=False,
        )

    op.create_table(
        "cashier_sequences",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cashier_sequences")),
    )
    op.create_table(
        "cashier_status_changes",
        sa.Column("entity_type", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column(
            "cause",
            sa.Enum(
                "api",
                "webhook",
                "admin",
                "system",
                name="change_cause",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("provider_event_id", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_status_changes")),
    )
    with op.batch_alter_table("cashier_status_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_status_changes_entity_type_entity_id_created_at"),
            ["entity_type", "entity_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "cashier_webhook_events",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("object_kind", sa.String(length=40), nullable=True),
        sa.Column("object_provider_id", sa.String(length=255), nullable=True),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "raw_body",
            sa.LargeBinary()
            .with_variant(mysql.LONGBLOB(), "mariadb")
            .with_variant(mysql.LONGBLOB(), "mysql"),
            nullable=False,
        ),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "processed",
                "failed",
                "ignored",
                name="webhook_event_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "last_error",
            sa.Text().with_variant(mysql.LONGTEXT(), "mariadb").with_variant(mysql.LONGTEXT(), "mysql"),
            nullable=True,
        ),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_webhook_events")),
        sa.UniqueConstraint("provider", "event_id", name=op.f("uq_cashier_webhook_events_provider_event_id")),
    )
    with op.batch_alter_table("cashier_webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_webhook_events_received_at_id"), ["received_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cashier_webhook_events_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_cashier_webhook_events_type"), ["type"], unique=False)

    op.create_table(
        "cashier_billing_profiles",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=True),
        sa.Column("address_line1", sa.String(length=200), nullable=True),
        sa.Column("address_line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=100), nullable=True),
        sa.Column("country", sa.CHAR(length=2), nullable=True),
        sa.Column("tax_id", sa.String(length=50), nullable=True),
        sa.Column(
            "tax_id_status",
            sa.Enum(
                "unverified",
                "valid",
                "invalid",
                name="tax_id_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("tax_exempt", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["cashier_customers.id"],
            name=op.f("fk_cashier_billing_profiles_customer_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_billing_profiles")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_cashier_billing_profiles_customer_id")),
    )
    op.create_table(
        "cashier_credit_accounts",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_cashier_credit_accounts_balance_non_negative")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["cashier_customers.id"],
            name=op.f("fk_cashier_credit_accounts_customer_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_credit_accounts")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_cashier_credit_accounts_customer_id")),
    )
    op.create_table(
        "cashier_customer_accounts",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_customer_id", sa.String(length=255), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["cashier_customers.id"],
            name=op.f("fk_cashier_customer_accounts_customer_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_customer_accounts")),
        sa.UniqueConstraint(
            "customer_id", "provider", name=op.f("uq_cashier_customer_accounts_customer_id_provider")
        ),
        sa.UniqueConstraint(
            "provider",
            "provider_customer_id",
            name=op.f("uq_cashier_customer_accounts_provider_provider_customer_id"),
        ),
    )
    op.create_table(
        "cashier_plans",
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "pricing_model",
            sa.Enum(
                "flat",
                "per_unit",
                "tiered_graduated",
                "tiered_volume",
                "metered",
                "free",
                name="pricing_model",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column(
            "interval",
            sa.Enum(
                "day",
                "week",
                "month",
                "year",
                "one_time",
                name="billing_interval",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("interval_count", sa.Integer(), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint("interval_count >= 1", name=op.f("ck_cashier_plans_interval_count_positive")),
        sa.CheckConstraint("trial_days >= 0", name=op.f("ck_cashier_plans_trial_days_non_negative")),
        sa.CheckConstraint("unit_amount >= 0", name=op.f("ck_cashier_plans_unit_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["cashier_products.id"],
            name=op.f("fk_cashier_plans_product_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_plans")),
    )
    with op.batch_alter_table("cashier_plans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_plans_active_product_id"), ["active", "product_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cashier_plans_product_id"), ["product_id"], unique=False)

    op.create_table(
        "cashier_checkout_sessions",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_session_id", sa.String(length=255), nullable=True),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "complete",
                "expired",
                name="checkout_session_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("plan_id", sa.Uuid(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("success_url", sa.String(length=2048), nullable=True),
        sa.Column("cancel_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "completed_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("subscription_id", sa.Uuid(), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "mode IN ('payment', 'subscription')", name=op.f("ck_cashier_checkout_sessions_mode_known")
        ),
        sa.CheckConstraint(
            "amount IS NULL OR amount > 0", name=op.f("ck_cashier_checkout_sessions_amount_positive")
        ),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_cashier_checkout_sessions_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["cashier_customers.id"],
            name=op.f("fk_cashier_checkout_sessions_customer_id"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["cashier_plans.id"],
            name=op.f("fk_cashier_checkout_sessions_plan_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_checkout_sessions")),
        sa.UniqueConstraint(
            "provider",
            "provider_session_id",
            name=op.f("uq_cashier_checkout_sessions_provider_provider_session_id"),
        ),
    )
    with op.batch_alter_table("cashier_checkout_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_checkout_sessions_customer_id_created_at_id"),
            ["customer_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_cashier_checkout_sessions_reference"), ["reference"], unique=False
        )

    op.create_table(
        "cashier_credit_transactions",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "grant",
                "consume",
                "expire",
                "refund",
                "adjust",
                name="credit_transaction_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column(
            "expires_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_cashier_credit_transactions_amount_non_zero")),
        sa.CheckConstraint(
            "balance_after >= 0", name=op.f("ck_cashier_credit_transactions_balance_after_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["cashier_credit_accounts.id"],
            name=op.f("fk_cashier_credit_transactions_account_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_credit_transactions")),
        sa.UniqueConstraint(
            "account_id",
            "idempotency_key",
            name=op.f("uq_cashier_credit_transactions_account_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("cashier_credit_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_credit_transactions_account_id_created_at_id"),
            ["account_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "cashier_plan_features",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=True),
        sa.Column("limit", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["cashier_plans.id"],
            name=op.f("fk_cashier_plan_features_plan_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_plan_features")),
        sa.UniqueConstraint("plan_id", "key", name=op.f("uq_cashier_plan_features_plan_id_key")),
    )
    op.create_table(
        "cashier_plan_tiers",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("up_to", sa.BigInteger(), nullable=True),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("flat_amount", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("flat_amount >= 0", name=op.f("ck_cashier_plan_tiers_flat_amount_non_negative")),
        sa.CheckConstraint("unit_amount >= 0", name=op.f("ck_cashier_plan_tiers_unit_amount_non_negative")),
        sa.CheckConstraint("up_to IS NULL OR up_to >= 1", name=op.f("ck_cashier_plan_tiers_up_to_positive")),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["cashier_plans.id"], name=op.f("fk_cashier_plan_tiers_plan_id"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_plan_tiers")),
        sa.UniqueConstraint("plan_id", "position", name=op.f("uq_cashier_plan_tiers_plan_id_position")),
    )
    op.create_table(
        "cashier_subscriptions",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_subscription_id", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "incomplete",
                "trialing",
                "active",
                "past_due",
                "paused",
                "canceled",
                "expired",
                name="subscription_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column(
            "current_period_start",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "current_period_end",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "trial_start",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "trial_end",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column(
            "canceled_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "ended_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column(
            "resumes_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "provider_updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_cashier_subscriptions_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["cashier_customers.id"],
            name=op.f("fk_cashier_subscriptions_customer_id"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["cashier_plans.id"],
            name=op.f("fk_cashier_subscriptions_plan_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_subscriptions")),
        sa.UniqueConstraint(
            "provider",
            "provider_subscription_id",
            name=op.f("uq_cashier_subscriptions_provider_provider_subscription_id"),
        ),
    )
    with op.batch_alter_table("cashier_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_subscriptions_customer_id_status"), ["customer_id", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cashier_subscriptions_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cashier_subscriptions_status_current_period_end"),
            ["status", "current_period_end"],
            unique=False,
        )

    op.create_table(
        "cashier_invoices",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=True),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "open",
                "paid",
                "void",
                "uncollectible",
                name="invoice_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column(
            "period_start",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "period_end",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "finalized_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "paid_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column("provider", sa.String(length=40), nullable=True),
        sa.Column("provider_invoice_id", sa.String(length=255), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_paid >= 0", name=op.f("ck_cashier_invoices_amount_paid_non_negative")),
        sa.CheckConstraint("tax >= 0", name=op.f("ck_cashier_invoices_tax_non_negative")),
        sa.CheckConstraint(
            "total = subtotal + tax", name=op.f("ck_cashier_invoices_total_is_subtotal_plus_tax")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["cashier_customers.id"],
            name=op.f("fk_cashier_invoices_customer_id"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["cashier_subscriptions.id"],
            name=op.f("fk_cashier_invoices_subscription_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_cashier_invoices_number")),
        sa.UniqueConstraint(
            "provider", "provider_invoice_id", name=op.f("uq_cashier_invoices_provider_provider_invoice_id")
        ),
    )
    with op.batch_alter_table("cashier_invoices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_invoices_customer_id_created_at_id"),
            ["customer_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_cashier_invoices_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "cashier_payments",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_payment_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_session_id", sa.Uuid(), nullable=True),
        sa.Column("subscription_id", sa.Uuid(), nullable=True),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "requires_action",
                "processing",
                "succeeded",
                "failed",
                "canceled",
                "refunded",
                "partially_refunded",
                name="payment_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("method", sa.String(length=40), nullable=True),
        sa.Column("payment_method_summary", sa.String(length=100), nullable=True),
        sa.Column("failure_code", sa.String(length=100), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column(
            "provider_updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_cashier_payments_amount_positive")),
        sa.CheckConstraint(
            "refunded_amount <= amount", name=op.f("ck_cashier_payments_refunded_amount_within_amount")
        ),
        sa.CheckConstraint(
            "refunded_amount >= 0", name=op.f("ck_cashier_payments_refunded_amount_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["checkout_session_id"],
            ["cashier_checkout_sessions.id"],
            name=op.f("fk_cashier_payments_checkout_session_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["cashier_customers.id"],
            name=op.f("fk_cashier_payments_customer_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_payments")),
        sa.UniqueConstraint("checkout_session_id", name=op.f("uq_cashier_payments_checkout_session_id")),
        sa.UniqueConstraint(
            "provider", "provider_payment_id", name=op.f("uq_cashier_payments_provider_provider_payment_id")
        ),
    )
    with op.batch_alter_table("cashier_payments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_payments_created_at_id"), ["created_at", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_cashier_payments_customer_id_created_at_id"),
            ["customer_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_cashier_payments_invoice_id"), ["invoice_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cashier_payments_reference"), ["reference"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cashier_payments_status_provider_currency"),
            ["status", "provider", "currency"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_cashier_payments_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "cashier_usage_records",
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_cashier_usage_records_quantity_non_negative")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["cashier_subscriptions.id"],
            name=op.f("fk_cashier_usage_records_subscription_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_usage_records")),
        sa.UniqueConstraint(
            "subscription_id",
            "idempotency_key",
            name=op.f("uq_cashier_usage_records_subscription_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("cashier_usage_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_usage_records_subscription_id_recorded_at"),
            ["subscription_id", "recorded_at"],
            unique=False,
        )

    op.create_table(
        "cashier_invoice_lines",
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("proration", sa.Boolean(), nullable=False),
        sa.Column(
            "period_start",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column(
            "period_end",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=True,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["cashier_invoices.id"],
            name=op.f("fk_cashier_invoice_lines_invoice_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_invoice_lines")),
        sa.UniqueConstraint(
            "invoice_id", "position", name=op.f("uq_cashier_invoice_lines_invoice_id_position")
        ),
    )
    op.create_table(
        "cashier_refunds",
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("provider_refund_id", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "succeeded",
                "failed",
                "canceled",
                name="refund_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_cashier_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["cashier_payments.id"],
            name=op.f("fk_cashier_refunds_payment_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_refunds")),
        sa.UniqueConstraint(
            "provider", "provider_refund_id", name=op.f("uq_cashier_refunds_provider_provider_refund_id")
        ),
    )
    with op.batch_alter_table("cashier_refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cashier_refunds_payment_id"), ["payment_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints; MariaDB refuses to drop an index
    # that backs a foreign key on its own, so tables go whole, dependents first.
    op.drop_table("cashier_refunds")
    op.drop_table("cashier_invoice_lines")
    op.drop_table("cashier_usage_records")
    op.drop_table("cashier_payments")
    op.drop_table("cashier_invoices")
    op.drop_table("cashier_subscriptions")
    op.drop_table("cashier_plan_tiers")
    op.drop_table("cashier_plan_features")
    op.drop_table("cashier_credit_transactions")
    op.drop_table("cashier_checkout_sessions")
    op.drop_table("cashier_plans")
    op.drop_table("cashier_customer_accounts")
    op.drop_table("cashier_credit_accounts")
    op.drop_table("cashier_billing_profiles")
    op.drop_table("cashier_webhook_events")
    op.drop_table("cashier_status_changes")
    op.drop_table("cashier_sequences")
    op.drop_table("cashier_provider_objects")
    op.drop_table("cashier_products")
    op.drop_table("cashier_idempotency_keys")
    op.drop_table("cashier_customers")
