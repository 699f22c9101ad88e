"""shadow decisions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 20:40:00.000000

A candidate intents folder can route every live message off the request path (a shadow run); what it
decided is stored here, beside the live decision of the same message, and never shown to customers (#20).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("candidate", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("intents_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("route", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("intent", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("context_used", sa.Boolean(), nullable=False),
        sa.Column("created_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["decision_id"], ["decision.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shadow_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shadow_decision_decision_id"), ["decision_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_shadow_decision_intents_version"), ["intents_version"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_shadow_decision_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shadow_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shadow_decision_created_at"))
        batch_op.drop_index(batch_op.f("ix_shadow_decision_intents_version"))
        batch_op.drop_index(batch_op.f("ix_shadow_decision_decision_id"))
    op.drop_table("shadow_decision")
