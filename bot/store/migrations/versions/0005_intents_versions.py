"""intents versions and activations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 20:20:00.000000

Every intents folder a server loads is stored with its files (intents, knowledge, tone, calibration) and
model id; an activation row names the version live since then, which every replica follows (#20).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intents_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("intents_version", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("model_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("specs", sa.JSON(), nullable=False),
        sa.Column("summary", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("loaded_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hash"),
    )
    with op.batch_alter_table("intents_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intents_version_intents_version"), ["intents_version"], unique=False
        )
    op.create_table(
        "intents_activation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("activated_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["intents_version.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("intents_activation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_intents_activation_version_id"), ["version_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("intents_activation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intents_activation_version_id"))
    op.drop_table("intents_activation")
    with op.batch_alter_table("intents_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intents_version_intents_version"))
    op.drop_table("intents_version")
