"""tax and invoice documents: VIES results on billing profiles, tax details on invoices

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("cashier_billing_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tax_exempt_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("tax_id_checked_at", _TIMESTAMP, nullable=True))
        batch_op.add_column(sa.Column("tax_id_consultation_number", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("tax_id_next_check_at", _TIMESTAMP, nullable=True))
        batch_op.create_index(
            batch_op.f("ix_cashier_billing_profiles_tax_id_next_check_at"),
            ["tax_id_next_check_at"],
            unique=False,
        )
    with op.batch_alter_table("cashier_invoices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "tax_details",
                sa.JSON().with_variant(mysql.JSON(), "mariadb").with_variant(mysql.JSON(), "mysql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("cashier_invoices", schema=None) as batch_op:
        batch_op.drop_column("tax_details")
    with op.batch_alter_table("cashier_billing_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cashier_billing_profiles_tax_id_next_check_at"))
        batch_op.drop_column("tax_id_next_check_at")
        batch_op.drop_column("tax_id_consultation_number")
        batch_op.drop_column("tax_id_checked_at")
        batch_op.drop_column("tax_exempt_reason")
