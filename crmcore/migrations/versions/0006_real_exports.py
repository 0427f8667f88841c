"""real exports: patron usage fields, branch zones, program labels, circulation without patrons, the category vocabulary

Revision ID: 0006
Revises: 0005
"""

from datetime import datetime, timezone

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The vocabulary a new library starts with (admins add and remove terms on the Imports page).
MATERIAL_TYPES = [
    "Book", "Large print", "Picture book", "Board book", "Graphic novel", "Magazine", "Newspaper", "Audiobook", "DVD", "Blu-ray",
    "Music CD", "Vinyl record", "Video game", "eBook", "eAudiobook", "eMagazine", "Streaming video", "Streaming music", "Map",
    "Kit", "Equipment", "Musical instrument", "Board game", "Microfilm", "Other material",
]
GENRES = [
    "Fiction", "Nonfiction", "Mystery", "Thriller", "Romance", "Science fiction", "Fantasy", "Horror", "Historical fiction",
    "Literary fiction", "Biography", "History", "Science", "Technology", "Health", "Cooking", "Travel", "Arts", "Music",
    "Poetry", "Drama", "Humor", "Religion", "Philosophy", "Psychology", "Business", "Law", "Politics", "Sports", "Crafts",
    "Gardening", "Home", "Parenting", "Education", "Languages", "Reference", "Local history", "Children's", "Young adult",
    "Comics", "Westerns", "Short stories", "Self-help", "True crime", "Nature",
]


def upgrade() -> None:
    with op.batch_alter_table("patron") as b:
        b.add_column(sa.Column("has_email", sa.Boolean(), nullable=True))
        b.add_column(sa.Column("resident", sa.Boolean(), nullable=True))
        b.add_column(sa.Column("lifetime_checkouts", sa.Integer(), nullable=True))
        b.add_column(sa.Column("lifetime_renewals", sa.Integer(), nullable=True))
        b.add_column(sa.Column("ils_last_activity_on", sa.Date(), nullable=True))
    # A plain ADD COLUMN on SQLite too (a batch would copy the table, which patrons' foreign keys refuse).
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE branch ADD COLUMN zone_id INTEGER REFERENCES zone (id)")
    else:
        op.add_column("branch", sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zone.id"), nullable=True))
    op.create_table(
        "program_label",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["program_event.id"]),
        sa.PrimaryKeyConstraint("program_id", "kind", "label"),
    )
    op.create_index("ix_program_label_kind_label", "program_label", ["kind", "label"])
    op.create_table(
        "circulation_monthly",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("material_type", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "branch_id", "kind", "material_type"),
    )
    terms = op.create_table(
        "category_term",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("group", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(terms, [{"name": n, "group": "material", "created_at": now} for n in MATERIAL_TYPES] + [{"name": n, "group": "genre", "created_at": now} for n in GENRES])


def downgrade() -> None:
    op.drop_table("category_term")
    op.drop_table("circulation_monthly")
    op.drop_index("ix_program_label_kind_label", table_name="program_label")
    op.drop_table("program_label")
    with op.batch_alter_table("branch") as b:
        b.drop_column("zone_id")
    with op.batch_alter_table("patron") as b:
        for column in ("ils_last_activity_on", "lifetime_renewals", "lifetime_checkouts", "resident", "has_email"):
            b.drop_column(column)
