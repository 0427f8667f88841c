"""The worker's housekeeping job really runs on SQLite (it once failed inside a transaction)."""

from sqlalchemy import text

from crmcore import worker
from crmcore.models import Branch


def test_housekeeping_checkpoints_the_wal_without_error(sqlite_db):
    with sqlite_db.write() as s:
        s.add(Branch(code="CEN", name="Central"))
    worker.housekeeping(sqlite_db)
    with sqlite_db.engine.connect() as conn:
        busy, log_frames, checkpointed = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        assert conn.execute(text("SELECT count(*) FROM branch")).scalar_one() == 1
    assert busy == 0 and checkpointed == log_frames


def test_housekeeping_runs_on_every_backend(db):
    worker.housekeeping(db)
