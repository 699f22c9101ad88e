"""sentiment by topic

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:20:00.000000

Sentiment by topic (#32 item 3): a decision keeps its message's anger score (`decision.anger`; rows
written before this revision have none, NULL, and are not counted), and a topic's surge of negative
messages is recorded once per intent and UTC day (`sentiment_surge`, unique on both), in the
transaction of its webhook event.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _string(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anger", sa.Float(), nullable=True))
    op.create_table(
        "sentiment_surge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intent", _string(100), nullable=False),
        sa.Column("day", _string(10), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("baseline_messages", sa.Integer(), nullable=False),
        sa.Column("baseline_negative", sa.Integer(), nullable=False),
        sa.Column("baseline_share", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=False),
        sa.Column("created_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("intent", "day", name="uq_sentiment_surge_intent_day"),
    )
    with op.batch_alter_table("sentiment_surge", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sentiment_surge_day"), ["day"], unique=False)


def downgrade() -> None:
    op.drop_table("sentiment_surge")
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.drop_column("anger")
