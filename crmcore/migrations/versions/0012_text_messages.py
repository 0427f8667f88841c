"""text messages: the do-not-text list, inbound texts, and each message's parts and delivery report

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "do_not_text",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone_hash"),
    )
    op.create_table(
        "inbound_text",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("keyword", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inbound_text_received_at", "inbound_text", ["received_at"])
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("parts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("delivery", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch.add_column(sa.Column("delivery_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("delivery_at")
        batch.drop_column("delivery")
        batch.drop_column("parts")
    op.drop_index("ix_inbound_text_received_at", "inbound_text")
    op.drop_table("inbound_text")
    op.drop_table("do_not_text")
