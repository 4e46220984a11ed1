"""rate limit counters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 03:24:37.121617
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cashier_rate_limit_counters",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column(
            "window_start",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cashier_rate_limit_counters")),
        sa.UniqueConstraint(
            "customer_id",
            "scope",
            "window_start",
            name=op.f("uq_cashier_rate_limit_counters_customer_id_scope_window_start"),
        ),
    )
    with op.batch_alter_table("cashier_rate_limit_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cashier_rate_limit_counters_window_start"), ["window_start"], unique=False
        )


def downgrade() -> None:
    op.drop_table("cashier_rate_limit_counters")
