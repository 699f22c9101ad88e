"""conversations an agent holds

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00.000000

A conversation's status now tells a ticket that waits for a person ('handoff': the bot keeps answering
what it is sure of) from one an agent claimed ('agent': the bot is quiet), #27 item 1. Claiming sets it
from now on; conversations whose ticket was claimed before this revision are marked here. Data only.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE conversation SET status = 'agent' WHERE status = 'handoff' AND id IN "
        "(SELECT conversation_id FROM handoff_ticket WHERE status = 'claimed')"
    )


def downgrade() -> None:
    op.execute("UPDATE conversation SET status = 'handoff' WHERE status = 'agent'")
