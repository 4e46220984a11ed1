"""provider protocol: checkout completion claim, refund provider fault, pending subscription change

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 04:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROVIDER_FAULT = "provider fault, will be retried: "


def upgrade() -> None:
    with op.batch_alter_table("cashier_checkout_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "completion_started_at",
                sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
                nullable=True,
            )
        )
    with op.batch_alter_table("cashier_refunds", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("provider_fault", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("cashier_subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "pending_change", sa.JSON().with_variant(mysql.JSON(), "mysql", "mariadb"), nullable=True
            )
        )
    # Refunds a fault left pending were marked by a prefix of their failure message.
    refunds = sa.table(
        "cashier_refunds",
        sa.column("provider_fault", sa.Boolean()),
        sa.column("failure_message", sa.String()),
    )
    op.execute(
        refunds.update()
        .where(refunds.c.failure_message.startswith(_PROVIDER_FAULT))
        .values(
            provider_fault=True,
            failure_message=sa.func.substr(refunds.c.failure_message, len(_PROVIDER_FAULT) + 1),
        )
    )


def downgrade() -> None:
    refunds = sa.table(
        "cashier_refunds",
        sa.column("provider_fault", sa.Boolean()),
        sa.column("failure_message", sa.String()),
    )
    op.execute(
        refunds.update()
        .where(refunds.c.provider_fault.is_(True))
        .values(
            failure_message=sa.func.substr(
                sa.literal(_PROVIDER_FAULT, sa.String())
                + sa.func.coalesce(refunds.c.failure_message, "", type_=sa.String()),
                1,
                500,
            )
        )
    )
    with op.batch_alter_table("cashier_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("pending_change")
    with op.batch_alter_table("cashier_refunds", schema=None) as batch_op:
        batch_op.drop_column("provider_fault")
    with op.batch_alter_table("cashier_checkout_sessions", schema=None) as batch_op:
        batch_op.drop_column("completion_started_at")
