"""recommendations: the catalogue feed of new materials, topics patrons chose, a campaign's fallback for the block

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("material_type", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("cover_url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("added_on", sa.Date(), nullable=False),
        sa.Column("is_pick", sa.Boolean(), nullable=False),
        sa.Column("imported_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["branch_id"], ["branch.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("link"),
    )
    op.create_index("ix_catalogue_item_added_on", "catalogue_item", ["added_on"])
    op.create_table(
        "patron_interest",
        sa.Column("patron_id", sa.Integer(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("chosen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patron_id"], ["patron.id"]),
        sa.PrimaryKeyConstraint("patron_id", "category"),
    )
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(sa.Column("recommendations_fallback", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False, server_default="picks"))
    # The patron's own choices that a later import must not undo.
    op.add_column("patron", sa.Column("history_stopped_by_patron", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("patron", sa.Column("interests_cleared_by_patron", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("patron") as batch:
        batch.drop_column("interests_cleared_by_patron")
        batch.drop_column("history_stopped_by_patron")
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("recommendations_fallback")
    op.drop_table("patron_interest")
    op.drop_index("ix_catalogue_item_added_on", table_name="catalogue_item")
    op.drop_table("catalogue_item")
