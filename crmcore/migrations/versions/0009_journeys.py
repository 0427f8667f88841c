"""journeys: journeys, their versions and enrolments; a journey step's campaign

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("template", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("holdout_pct", sa.Float(), nullable=False),
        sa.Column("last_evaluated_on", sa.Date(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_journey_status", "journey", ["status"])
    op.create_table(
        "journey_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["journey_id"], ["journey.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "number", name="uq_journey_version_number"),
    )
    op.create_table(
        "journey_enrolment",
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
        sa.ForeignKeyConstraint(["journey_id"], ["journey.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["journey_version.id"]),
        sa.ForeignKeyConstraint(["patron_id"], ["patron.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "patron_id", "round", name="uq_journey_enrolment_round"),
    )
    op.create_index("ix_journey_enrolment_due", "journey_enrolment", ["version_id", "state", "step", "due_on"])
    op.create_index("ix_journey_enrolment_patron", "journey_enrolment", ["patron_id", "journey_id"])
    op.add_column("campaign", sa.Column("journey_version_id", sa.Integer(), nullable=True))
    op.add_column("campaign", sa.Column("journey_step", sa.Integer(), nullable=True))
    op.add_column("campaign", sa.Column("journey_round", sa.Integer(), nullable=True))
    op.create_index("ix_campaign_journey_step", "campaign", ["journey_version_id", "journey_step", "journey_round"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_campaign_journey_step", table_name="campaign")
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("journey_round")
        batch.drop_column("journey_step")
        batch.drop_column("journey_version_id")
    op.drop_table("journey_enrolment")
    op.drop_table("journey_version")
    op.drop_index("ix_journey_status", table_name="journey")
    op.drop_table("journey")
