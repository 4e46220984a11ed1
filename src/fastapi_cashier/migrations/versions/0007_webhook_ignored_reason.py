"""webhook ignored reason

Stored webhook events get ``ignored_reason``: why an ``ignored`` event changed nothing (an
event type the adapter does not handle, a signed body it could not read, an event older than
the state applied). It was kept in ``last_error`` before; the upgrade moves it there from, and
the downgrade back.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENTS = sa.table(
    "cashier_webhook_events",
    sa.column("status", sa.String()),
    sa.column("last_error", sa.Text()),
    sa.column("ignored_reason", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("cashier_webhook_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "ignored_reason", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"), nullable=True
            )
        )
    # Two statements: MariaDB/MySQL assign a single UPDATE's columns left to right, so a copy and
    # a clear in one statement could copy the cleared value.
    ignored = _EVENTS.c.status == "ignored"
    op.execute(_EVENTS.update().where(ignored).values(ignored_reason=_EVENTS.c.last_error))
    op.execute(_EVENTS.update().where(ignored).values(last_error=None))


def downgrade() -> None:
    op.execute(
        _EVENTS.update()
        .where(_EVENTS.c.status == "ignored", _EVENTS.c.ignored_reason.is_not(None))
        .values(last_error=_EVENTS.c.ignored_reason)
    )
    with op.batch_alter_table("cashier_webhook_events", schema=None) as batch_op:
        batch_op.drop_column("ignored_reason")
