"""tax categories and the tax of refunds

Products get a VAT category (``ebooks`` ...) for reduced rates; refunds record the VAT inside
their amount, so a credit note shows the net and the tax refunded.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 09:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cashier_products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tax_category", sa.String(length=40), nullable=True))
    with op.batch_alter_table("cashier_refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tax_amount", sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_cashier_refunds_tax_amount_within_amount"),
            "tax_amount IS NULL OR (tax_amount >= 0 AND tax_amount <= amount)",
        )


def downgrade() -> None:
    with op.batch_alter_table("cashier_refunds", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_cashier_refunds_tax_amount_within_amount"), type_="check")
        batch_op.drop_column("tax_amount")
    with op.batch_alter_table("cashier_products", schema=None) as batch_op:
        batch_op.drop_column("tax_category")
