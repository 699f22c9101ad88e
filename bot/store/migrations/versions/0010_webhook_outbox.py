"""webhook subscriptions and outbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:20:00.000000

Outgoing webhooks (#30 item 1): where events go (`webhook_subscription`) and the outbox of events to send
(`webhook_delivery`), written in the transaction of the turn or action that caused them.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _time() -> bot.store.models.UTCDateTime:
    return bot.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", _string(2000), nullable=False),
        sa.Column("secret", _string(200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("source", _string(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", _string(64), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_type", _string(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", _string(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _time(), nullable=False),
        sa.Column("lease_until", _time(), nullable=True),
        sa.Column("last_error", _string(500), nullable=True),
        sa.Column("delivered_at", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["webhook_subscription.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_delivery_event_id"), ["event_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webhook_delivery_subscription_id"), ["subscription_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_webhook_delivery_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webhook_delivery_next_attempt_at"), ["next_attempt_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("webhook_delivery")
    op.drop_table("webhook_subscription")
