"""last month per activity kind on the patron (segments read one column instead of the rollups), an
index for age band × branch, and a covering index for "who consents to channel × topic"

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KINDS = ("checkout", "renewal", "digital_loan", "pc_session", "event_attendance", "visit", "survey_response")


def upgrade() -> None:
    with op.batch_alter_table("patron") as b:
        for kind in KINDS:
            b.add_column(sa.Column(f"last_{kind}_month", sa.Date(), nullable=True))
    op.create_index("ix_patron_branch_age", "patron", ["branch_id", "age_band"])
    op.drop_index("ix_current_consent_channel_topic", table_name="current_consent")
    op.create_index("ix_current_consent_channel_topic", "current_consent", ["channel", "topic", "granted", "patron_id"])
    # Fill them from the monthly rollups (crmcore.library.activity.widen_last_months keeps them from now on).
    patron = sa.table("patron", sa.column("id"), *(sa.column(f"last_{kind}_month") for kind in KINDS))
    monthly = sa.table("activity_monthly", sa.column("patron_id"), sa.column("kind"), sa.column("month"))
    latest = (
        sa.select(monthly.c.patron_id, *(sa.func.max(sa.case((monthly.c.kind == kind, monthly.c.month))).label(kind) for kind in KINDS))
        .group_by(monthly.c.patron_id)
        .subquery()
    )
    op.execute(patron.update().where(patron.c.id == latest.c.patron_id).values({f"last_{kind}_month": latest.c[kind] for kind in KINDS}))


def downgrade() -> None:
    op.drop_index("ix_patron_branch_age", table_name="patron")
    op.drop_index("ix_current_consent_channel_topic", table_name="current_consent")
    op.create_index("ix_current_consent_channel_topic", "current_consent", ["channel", "topic", "granted"])
    with op.batch_alter_table("patron") as b:
        for kind in KINDS:
            b.drop_column(f"last_{kind}_month")
