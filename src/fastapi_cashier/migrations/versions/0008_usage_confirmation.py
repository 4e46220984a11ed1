"""usage confirmation

Usage records remember whether the provider confirmed them (``reported_at``) and whether a
retriable fault left them unconfirmed (``provider_fault``): a report repeated with the same key
resends such a record, settled first against the provider's own records where the provider keeps
no id of them (Lemon Squeezy). Records made before this revision are taken as confirmed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMP = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("cashier_usage_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reported_at", _TIMESTAMP, nullable=True))
        batch_op.add_column(
            sa.Column("provider_fault", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    usage = sa.table(
        "cashier_usage_records",
        sa.column("reported_at", _TIMESTAMP),
        sa.column("created_at", _TIMESTAMP),
    )
    op.execute(usage.update().values(reported_at=usage.c.created_at))


def downgrade() -> None:
    with op.batch_alter_table("cashier_usage_records", schema=None) as batch_op:
        batch_op.drop_column("provider_fault")
        batch_op.drop_column("reported_at")
