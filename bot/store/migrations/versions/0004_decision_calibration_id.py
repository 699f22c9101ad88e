"""decision calibration id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 00:05:00.000000

Decisions name the calibration they were scored with (the intents hash leaves calibration.yaml out), so a
logged decision can be replayed. Rows written before this revision get '' (unknown).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "calibration_id",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default="",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.drop_column("calibration_id")
