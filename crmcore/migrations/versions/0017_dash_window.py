"""dash_window: the months the stored dashboard summaries cover, so that an import can update them incrementally

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


def downgrade() -> None:
    op.drop_table("dash_window")
