"""not duplicates: pairs of organizations or contacts a staff member said are different, never suggested again

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "not_duplicate",
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("second_id", sa.Integer(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["decided_by_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("kind", "first_id", "second_id"),
    )


def downgrade() -> None:
    op.drop_table("not_duplicate")
