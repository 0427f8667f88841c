"""sign-ups: prospects from the public form (double opt-in), their consent, the form's rate limit; campaigns to prospects

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prospect",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("postal_code", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("topics", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("patron_id", sa.Integer(), nullable=True),
        sa.Column("linked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"]),
        sa.ForeignKeyConstraint(["patron_id"], ["patron.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_prospect_created_at", "prospect", ["created_at"])
    op.create_index("ix_prospect_confirmed_at", "prospect", ["confirmed_at"])
    op.create_table(
        "prospect_consent",
        sa.Column("prospect_id", sa.Integer(), nullable=False),
        sa.Column("topic", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["prospect_id"], ["prospect.id"]),
        sa.PrimaryKeyConstraint("prospect_id", "topic"),
    )
    op.create_table(
        "signup_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signup_attempt_client_at", "signup_attempt", ["client_hash", "at"])
    # Columns added in place, not by rebuilding the tables (SQLite's batch mode would rewrite `message`, the
    # largest table, and the CREATE statement it writes is not the same from one run to the next).
    op.add_column("campaign", sa.Column("audience", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default="patrons"))
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a column's reference only inline
        op.execute("ALTER TABLE message ADD COLUMN prospect_id INTEGER REFERENCES prospect (id)")
    else:
        op.add_column("message", sa.Column("prospect_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_message_prospect_id_prospect", "message", "prospect", ["prospect_id"], ["id"])
    op.create_index("uq_message_campaign_prospect", "message", ["campaign_id", "prospect_id"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_message_campaign_prospect", table_name="message")
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_constraint("fk_message_prospect_id_prospect", type_="foreignkey")
        batch_op.drop_column("prospect_id")
    with op.batch_alter_table("campaign") as batch_op:
        batch_op.drop_column("audience")
    op.drop_index("ix_signup_attempt_client_at", table_name="signup_attempt")
    op.drop_table("signup_attempt")
    op.drop_table("prospect_consent")
    op.drop_index("ix_prospect_confirmed_at", table_name="prospect")
    op.drop_index("ix_prospect_created_at", table_name="prospect")
    op.drop_table("prospect")
