"""features: the schema added on top of the initial one, one section per area

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # --- foundation / demo ---
    op.create_index("ix_patron_name", "patron", ["last_name", "first_name"])
    op.create_index("ix_patron_phone", "patron", ["phone"])
    # --- outreach ---
    with op.batch_alter_table("organization") as b:
        b.add_column(sa.Column("partner_since", sa.Date(), nullable=True))
    op.create_table(
        "calendar_feed",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_user.id"]),
        sa.PrimaryKeyConstraint("staff_id"),
        sa.UniqueConstraint("token"),
    )
    # --- imports ---
    op.create_table(
        "program_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("categories", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("audiences", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("registrations", sa.Integer(), nullable=True),
        sa.Column("attendance_in_person", sa.Integer(), nullable=True),
        sa.Column("attendance_online", sa.Integer(), nullable=True),
        sa.Column("row_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_program_event_held_on", "program_event", ["held_on"], unique=False)
    # --- dashboard ---
    _s = sqlmodel.sql.sqltypes.AutoString
    _dims = lambda: [  # noqa: E731  (a fresh Column list per table)
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("patron_type", _s(length=40), nullable=False),
    ]
    op.create_table(
        "dash_state",
        sa.Column("month", sa.Date(), nullable=False),
        *_dims(),
        sa.Column("age_band", _s(length=20), nullable=False),
        sa.Column("state", _s(length=16), nullable=False),
        sa.Column("patrons", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "branch_id", "zone_id", "patron_type", "age_band", "state"),
    )
    op.create_table(
        "dash_flow",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("lag", sa.Integer(), nullable=False),
        *_dims(),
        sa.Column("from_state", _s(length=16), nullable=False),
        sa.Column("to_state", _s(length=16), nullable=False),
        sa.Column("patrons", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "lag", "branch_id", "zone_id", "patron_type", "from_state", "to_state"),
    )
    op.create_table(
        "dash_activity",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("kind", _s(length=30), nullable=False),
        *_dims(),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("patrons", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "kind", "branch_id", "zone_id", "patron_type"),
    )
    op.create_table(
        "dash_registration",
        sa.Column("month", sa.Date(), nullable=False),
        *_dims(),
        sa.Column("age_band", _s(length=20), nullable=False),
        sa.Column("patrons", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "branch_id", "zone_id", "patron_type", "age_band"),
    )
    op.create_table(
        "dash_cohort",
        sa.Column("cohort_month", sa.Date(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        *_dims(),
        sa.Column("patrons", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cohort_month", "month", "branch_id", "zone_id", "patron_type"),
    )
    # --- segments ---
    op.create_index("ix_activity_monthly_kind_patron_month", "activity_monthly", ["kind", "patron_id", "month"])
    # --- campaigns ---
    # --- privacy / admin ---
    pass


def downgrade() -> None:
    pass
