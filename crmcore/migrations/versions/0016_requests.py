"""requests: the shared inbox of requests from patrons and partners (topics, requests, threads, canned replies)

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The topics a library starts with (an admin edits the list): name, response target in hours.
TOPICS = [("E-resources", 24), ("Account", 24), ("Programs", 48), ("Outreach", 72), ("Other", 72)]


def upgrade() -> None:
    topic = op.create_table(
        "request_topic",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("target_hours", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("requester_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("requester_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("patron_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("topic_id", sa.Integer(), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("first_response_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["patron_id"], ["patron.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["topic_id"], ["request_topic.id"]),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"]),
        sa.ForeignKeyConstraint(["owner_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_request_queue", "request", ["status", "due_at"])
    op.create_index("ix_request_owner", "request", ["owner_id", "status"])
    op.create_index("ix_request_requester_email", "request", ["requester_email"])
    op.create_index("ix_request_patron_id", "request", ["patron_id"])
    op.create_index("ix_request_contact_id", "request", ["contact_id"])
    op.create_index("ix_request_created_at", "request", ["created_at"])
    op.create_index("ix_request_closed_at", "request", ["closed_at"])
    op.create_table(
        "request_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("remark", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["request.id"]),
        sa.ForeignKeyConstraint(["author_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_request_entry_request_id", "request_entry", ["request_id"])
    op.create_table(
        "canned_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.bulk_insert(topic, [{"name": name, "target_hours": hours, "active": True} for name, hours in TOPICS])


def downgrade() -> None:
    op.drop_table("canned_reply")
    op.drop_table("request_entry")
    op.drop_table("request")
    op.drop_table("request_topic")
