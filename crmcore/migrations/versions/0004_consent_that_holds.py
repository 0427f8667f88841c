"""consent that holds: who decided each consent record (patron, import, staff), the patron's preferred
channel and what the last import stated, inbound mail and bounces, one-use downloads

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PATRON_SOURCES = ("preference page", "one-click", "mailto")


def upgrade() -> None:
    with op.batch_alter_table("consent_record") as b:
        b.add_column(sa.Column("source_class", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False, server_default="staff"))
        b.add_column(sa.Column("recorded_by_id", sa.Integer(), nullable=True))
        b.create_foreign_key("fk_consent_record_recorded_by", "staff_user", ["recorded_by_id"], ["id"])
    with op.batch_alter_table("current_consent") as b:
        b.add_column(sa.Column("source_class", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False, server_default="staff"))
    with op.batch_alter_table("patron") as b:
        b.add_column(sa.Column("preferred_channel", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        b.add_column(sa.Column("ils_consent", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=True))
    # Records kept so far: the preference page was the patron; "import: …" an import; the rest staff.
    record = sa.table("consent_record", sa.column("id"), sa.column("patron_id"), sa.column("channel"), sa.column("topic"),
                      sa.column("recorded_at"), sa.column("source"), sa.column("source_class"))
    op.execute(record.update().where(record.c.source.in_(PATRON_SOURCES)).values(source_class="patron"))
    op.execute(record.update().where(record.c.source.like("import:%")).values(source_class="import"))
    current = sa.table("current_consent", sa.column("patron_id"), sa.column("channel"), sa.column("topic"), sa.column("source_class"))
    latest = (
        sa.select(record.c.source_class)
        .where(record.c.patron_id == current.c.patron_id, record.c.channel == current.c.channel, record.c.topic == current.c.topic)
        .order_by(record.c.recorded_at.desc(), record.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    op.execute(current.update().values(source_class=sa.func.coalesce(latest, "staff")))

    op.create_table(
        "inbound_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("reviewed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inbound_mail_received_at", "inbound_mail", ["received_at"])
    op.create_index("ix_inbound_mail_kind", "inbound_mail", ["kind"])
    op.create_table(
        "bounce",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hard", sa.Boolean(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_bounce_hash_at", "bounce", ["email_hash", "at"])
    op.create_table(
        "download",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("download")
    op.drop_index("ix_bounce_hash_at", table_name="bounce")
    op.drop_table("bounce")
    op.drop_index("ix_inbound_mail_kind", table_name="inbound_mail")
    op.drop_index("ix_inbound_mail_received_at", table_name="inbound_mail")
    op.drop_table("inbound_mail")
    with op.batch_alter_table("patron") as b:
        b.drop_column("ils_consent")
        b.drop_column("preferred_channel")
    with op.batch_alter_table("current_consent") as b:
        b.drop_column("source_class")
    with op.batch_alter_table("consent_record") as b:
        b.drop_constraint("fk_consent_record_recorded_by", type_="foreignkey")
        b.drop_column("recorded_by_id")
        b.drop_column("source_class")
