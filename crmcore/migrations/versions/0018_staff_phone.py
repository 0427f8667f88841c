"""staff phone: a staff member's own number, where a text campaign's test is sent

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_user") as batch:
        batch.add_column(sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_user") as batch:
        batch.drop_column("phone")
