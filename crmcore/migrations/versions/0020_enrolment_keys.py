"""enrolment keys: an enrolment's journey and version are one reference; a message's prospect index holds only prospects; an index of erased patrons

On PostgreSQL every foreign key of a row inserted is a lookup and a row lock: the first day of a journey
at 1,000,000 patrons inserts 160,000 enrolments and as many messages. An enrolment named its journey and its
version separately (two keys, the first implied by the second): it now names (journey, version) once, against
a unique index on the version's (journey_id, id), so that a version of another journey cannot be named. The
unique campaign × prospect index of `message` now holds only the rows that have a prospect (a message to a
patron added an entry to it for nothing). A partial index lists the erased patrons, whom a journey's exits look
for every day (without it, PostgreSQL reads the whole patron table once per journey).

Revision ID: 0020
Revises: 0018
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None

_COLUMNS = "id, journey_id, version_id, patron_id, round, is_holdout, entered_on, expires_on_at_entry, step, due_on, state, exit_reason, ended_on"


def _enrolment_table(name: str, *keys: sa.ForeignKeyConstraint) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("patron_id", sa.Integer(), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("is_holdout", sa.Boolean(), nullable=False),
        sa.Column("entered_on", sa.Date(), nullable=False),
        sa.Column("expires_on_at_entry", sa.Date(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("exit_reason", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        *keys,
        sa.ForeignKeyConstraint(["patron_id"], ["patron.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "patron_id", "round", name="uq_journey_enrolment_round"),
    )


def _sqlite_rebuild(*keys: sa.ForeignKeyConstraint) -> None:
    """SQLite changes a table's references only by rebuilding it: written out here, so that every database
    migrated gets the same CREATE statement (nothing references journey_enrolment)."""
    op.drop_index("ix_journey_enrolment_due", table_name="journey_enrolment")
    op.drop_index("ix_journey_enrolment_patron", table_name="journey_enrolment")
    op.execute("ALTER TABLE journey_enrolment RENAME TO journey_enrolment_old")
    _enrolment_table("journey_enrolment", *keys)
    op.execute(f"INSERT INTO journey_enrolment ({_COLUMNS}) SELECT {_COLUMNS} FROM journey_enrolment_old")
    op.drop_table("journey_enrolment_old")
    op.create_index("ix_journey_enrolment_due", "journey_enrolment", ["version_id", "state", "step", "due_on"])
    op.create_index("ix_journey_enrolment_patron", "journey_enrolment", ["patron_id", "journey_id"])


def upgrade() -> None:
    op.create_index("uq_journey_version_journey_id", "journey_version", ["journey_id", "id"], unique=True)
    one = sa.ForeignKeyConstraint(["journey_id", "version_id"], ["journey_version.journey_id", "journey_version.id"], name="fk_journey_enrolment_version")
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(one)
    else:
        op.drop_constraint("journey_enrolment_journey_id_fkey", "journey_enrolment", type_="foreignkey")
        op.drop_constraint("journey_enrolment_version_id_fkey", "journey_enrolment", type_="foreignkey")
        op.create_foreign_key("fk_journey_enrolment_version", "journey_enrolment", "journey_version", ["journey_id", "version_id"], ["journey_id", "id"])
    op.drop_index("uq_message_campaign_prospect", table_name="message")
    op.create_index("uq_message_campaign_prospect", "message", ["campaign_id", "prospect_id"], unique=True,
                    postgresql_where=sa.text("prospect_id IS NOT NULL"), sqlite_where=sa.text("prospect_id IS NOT NULL"))
    op.create_index("ix_patron_erased", "patron", ["id"], postgresql_where=sa.text("erased_at IS NOT NULL"), sqlite_where=sa.text("erased_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_patron_erased", table_name="patron")
    op.drop_index("uq_message_campaign_prospect", table_name="message")
    op.create_index("uq_message_campaign_prospect", "message", ["campaign_id", "prospect_id"], unique=True)
    journey = sa.ForeignKeyConstraint(["journey_id"], ["journey.id"])
    version = sa.ForeignKeyConstraint(["version_id"], ["journey_version.id"])
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(journey, version)
    else:
        op.drop_constraint("fk_journey_enrolment_version", "journey_enrolment", type_="foreignkey")
        op.create_foreign_key("journey_enrolment_journey_id_fkey", "journey_enrolment", "journey", ["journey_id"], ["id"])
        op.create_foreign_key("journey_enrolment_version_id_fkey", "journey_enrolment", "journey_version", ["version_id"], ["id"])
    op.drop_index("uq_journey_version_journey_id", table_name="journey_version")
