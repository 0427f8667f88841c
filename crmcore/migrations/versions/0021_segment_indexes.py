"""segment and summary indexes: partial, covering indexes of the patrons not erased, one per standard segment's
narrowing columns, so that counting a standard segment at 1,000,000 patrons reads an index and never the patron
rows; on SQLite the dashboard summaries (dash_*) become WITHOUT ROWID tables, stored in their key's order, so
that the dashboard's reads of a month are one range of the table instead of a lookup per row

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

LIVE = sa.text("erased_at IS NULL")
# name, columns, PostgreSQL's included columns (SQLite's indexes carry the rowid, patron.id). erased_at ends each
# key although the index holds only NULLs there: SQLite's planner counts an index as covering only when it holds
# every column the query names, and a count that visits no patron row is the point.
INDEXES = (
    ("ix_patron_live_registered", ["registered_on", "erased_at"], []),
    ("ix_patron_live_zone_activity", ["zone_id", "last_activity_on", "erased_at"], ["id"]),
    ("ix_patron_live_branch_age", ["branch_id", "age_band", "birth_year", "erased_at"], []),
    ("ix_patron_live_digital_loan", ["last_digital_loan_month", "erased_at"], []),
    ("ix_patron_live_checkout_event", ["last_checkout_month", "last_event_attendance_month", "erased_at"], []),
)
SUMMARIES = ("dash_state", "dash_flow", "dash_activity", "dash_registration", "dash_cohort")


def _rebuild(table: str, *, rowid: bool) -> None:
    """Make a SQLite table again with the same columns and key, with or without a rowid, keeping its rows."""
    conn = op.get_bind()
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar_one().rstrip()
    suffix = " WITHOUT ROWID"
    if sql.endswith(suffix) != rowid:
        return  # already so
    sql = sql.removesuffix(suffix) if rowid else sql + suffix
    conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {table}_old")
    conn.exec_driver_sql(sql)
    conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {table}_old")
    conn.exec_driver_sql(f"DROP TABLE {table}_old")


def upgrade() -> None:
    for name, columns, include in INDEXES:
        op.create_index(name, "patron", columns, sqlite_where=LIVE, postgresql_where=LIVE, postgresql_include=include)
    if op.get_bind().dialect.name == "sqlite":
        for table in SUMMARIES:
            _rebuild(table, rowid=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in SUMMARIES:
            _rebuild(table, rowid=True)
    for name, _, _ in INDEXES:
        op.drop_index(name, table_name="patron")
