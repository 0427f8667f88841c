"""dash_window: the months the stored dashboard summaries cover, so that an import can update them incrementally;
an index on patron.ils_last_activity_on

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No row: the summaries already stored were made before this record existed, so the next refresh is a full one.
    op.create_table(
        "dash_window",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_month", sa.Date(), nullable=False),
        sa.Column("last_month", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The first and last month an ILS export states, read by every refresh to know the months to summarise.
    op.create_index("ix_patron_ils_last_activity", "patron", ["ils_last_activity_on"])


def downgrade() -> None:
    op.drop_index("ix_patron_ils_last_activity", table_name="patron")
    op.drop_table("dash_window")
