"""surveys: surveys, their responses and free-text answers; the survey a campaign's {{ survey_link }} opens

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_s = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "survey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _s(length=120), nullable=False),
        sa.Column("intro", _s(length=1000), nullable=True),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("status", _s(length=20), nullable=False),
        sa.Column("follow_up_staff_id", sa.Integer(), nullable=True),
        sa.Column("follow_up_role", _s(length=20), nullable=True),
        sa.Column("follow_up_by_branch", sa.JSON(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["follow_up_staff_id"], ["staff_user.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "survey_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=False),
        sa.Column("patron_id", sa.Integer(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("nps", sa.Integer(), nullable=True),
        sa.Column("contact_ok", sa.Boolean(), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("age_band", _s(length=20), nullable=True),
        sa.Column("stage", _s(length=20), nullable=True),
        sa.Column("activity_event_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["survey_id"], ["survey.id"]),
        sa.ForeignKeyConstraint(["patron_id"], ["patron.id"]),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"]),
        sa.ForeignKeyConstraint(["zone_id"], ["zone.id"]),
        sa.ForeignKeyConstraint(["activity_event_id"], ["activity_event.id"]),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("survey_id", "patron_id", name="uq_survey_response_patron"),
    )
    op.create_index("ix_survey_response_survey_submitted", "survey_response", ["survey_id", "submitted_at"])
    op.create_table(
        "survey_text",
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("question", _s(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("written_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["response_id"], ["survey_response.id"]),
        sa.PrimaryKeyConstraint("response_id", "question"),
    )
    op.create_index("ix_survey_text_written_on", "survey_text", ["written_on"])
    # A plain ADD COLUMN … REFERENCES on both backends: a batch copy of the table would write its foreign
    # keys in no fixed order, and a backup's schema would not compare equal to a fresh migration's.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE campaign ADD COLUMN survey_id INTEGER REFERENCES survey (id)")
    else:
        op.add_column("campaign", sa.Column("survey_id", sa.Integer(), nullable=True))
        op.create_foreign_key("campaign_survey_id_fkey", "campaign", "survey", ["survey_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("survey_id")
    op.drop_index("ix_survey_text_written_on", table_name="survey_text")
    op.drop_table("survey_text")
    op.drop_index("ix_survey_response_survey_submitted", table_name="survey_response")
    op.drop_table("survey_response")
    op.drop_table("survey")
