"""decision request id

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:10:00.000000

A decision stores the X-Request-Id of the chat request that made it (#30 item 5), which its JSON log lines
carry too, so one complaint is followed from the decision to the logs and back (`GET /v1/logs?request_id=`).
Rows written before this revision have none (NULL).
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_decision_request_id"), ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_request_id"))
        batch_op.drop_column("request_id")
