"""peers, personas and lapse risk: survey rows of peer libraries, personas, each patron's persona and risk

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_survey_row",
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("fscs_key", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True),
        sa.Column("population", sa.BigInteger(), nullable=True),
        sa.Column("visits", sa.BigInteger(), nullable=True),
        sa.Column("circulation", sa.BigInteger(), nullable=True),
        sa.Column("e_circulation", sa.BigInteger(), nullable=True),
        sa.Column("registered", sa.BigInteger(), nullable=True),
        sa.Column("programs", sa.BigInteger(), nullable=True),
        sa.Column("attendance", sa.BigInteger(), nullable=True),
        sa.Column("expenditure", sa.BigInteger(), nullable=True),
        sa.Column("branches", sa.Integer(), nullable=True),
        sa.Column("imported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fiscal_year", "fscs_key"),
    )
    op.create_index("ix_library_survey_state_year", "library_survey_row", ["state", "fiscal_year"])
    op.create_table(
        "persona",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("centre", sa.JSON(), nullable=True),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "patron_insight",
        sa.Column("patron_id", sa.Integer(), nullable=False),
        sa.Column("persona_id", sa.Integer(), nullable=True),
        sa.Column("lapse_risk", sa.Float(), nullable=True),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patron_id"], ["patron.id"]),
        sa.ForeignKeyConstraint(["persona_id"], ["persona.id"]),
        sa.PrimaryKeyConstraint("patron_id"),
    )
    op.create_index("ix_patron_insight_persona", "patron_insight", ["persona_id"])
    op.create_index("ix_patron_insight_risk", "patron_insight", ["lapse_risk"])
    op.create_table(
        "insight_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_insight_run_kind", "insight_run", ["kind"])


def downgrade() -> None:
    op.drop_table("insight_run")
    op.drop_table("patron_insight")
    op.drop_table("persona")
    op.drop_table("library_survey_row")
