"""sessions bound to the account: a per-account session epoch and the staff_session table

Revision ID: 0005
Revises: 0004
"""

import secrets

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_user") as b:
        b.add_column(sa.Column("session_epoch", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default=""))
    staff = sa.table("staff_user", sa.column("id"), sa.column("session_epoch"))
    bind = op.get_bind()
    for (user_id,) in bind.execute(sa.select(staff.c.id)).all():
        bind.execute(staff.update().where(staff.c.id == user_id).values(session_epoch=secrets.token_hex(16)))
    op.create_table(
        "staff_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("epoch", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("ticket_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("ended_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        sa.UniqueConstraint("ticket_hash"),
    )
    op.create_index("ix_staff_session_user_id", "staff_session", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_session_user_id", table_name="staff_session")
    op.drop_table("staff_session")
    with op.batch_alter_table("staff_user") as b:
        b.drop_column("session_epoch")
