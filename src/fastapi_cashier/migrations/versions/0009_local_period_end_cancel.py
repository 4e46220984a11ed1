"""local period-end cancel: the claim of the cancel the library makes when a period ends

Providers without a cancel at period end of their own (PayPal) have the library record
``cancel_at_period_end`` and cancel at the provider when the period has ended; the worker that
does it claims the subscription first with ``cancel_started_at``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cashier_subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "cancel_started_at",
                sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("cashier_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("cancel_started_at")
