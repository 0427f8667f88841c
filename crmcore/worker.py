"""The worker (`python -m crmcore worker`): runs scheduled jobs until stopped.

Each job runs when its interval has passed since its last run; a failing job is logged (never with
personal data) and retried at its next turn, and does not stop the others.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from crmcore.admin import backup
from crmcore.campaigns import sending
from crmcore.db import Database
from crmcore.imports import uploads
from crmcore.journeys import evaluation as journeys
from crmcore.kpis import incremental as summaries
from crmcore.inbox import tickets as requests_inbox
from crmcore.insights import refresh as insights
from crmcore.privacy import retention
from crmcore.signups import prospects
from crmcore.texts import sending as text_sending

log = logging.getLogger("liaison.worker")


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Database], object]


def housekeeping(db: Database) -> None:
    """Keep the embedded database tidy (planner statistics, the WAL) and delete stale uploaded import files."""
    uploads.remove_stale()
    if db.is_sqlite:
        with db.engine.connect() as conn:
            # On the driver connection, outside the BEGIN SQLAlchemy would open: SQLite refuses to
            # checkpoint inside a transaction ("database table is locked").
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA optimize")
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


JOBS: list[Job] = [
    # First, so that it runs when the worker starts and the day's backup knows whether the database is sound.
    Job("integrity check", timedelta(days=1), backup.check_database),
    Job("housekeeping", timedelta(hours=1), housekeeping),
    Job("backup", timedelta(hours=1), backup.daily_backup),  # hourly check; backs up once a day
    Job("retention", timedelta(days=1), retention.daily),
    # A new month (or a change it could not follow) needs the dashboard summaries rebuilt in full.
    Job("dashboard summaries", timedelta(hours=1), summaries.catch_up),
    Job("send campaigns", timedelta(seconds=5), sending.send_pending),
    # Journeys: time triggers once a day; event triggers when an import has finished.
    Job("journeys", timedelta(days=1), journeys.evaluate),
    Job("journeys after imports", timedelta(minutes=5), journeys.after_imports),
    Job("request retention", timedelta(days=1), requests_inbox.delete_expired),
    Job("personas and lapse risk", timedelta(days=7), insights.weekly),
    Job("sign-ups", timedelta(hours=1), prospects.purge),  # unconfirmed ones deleted after 7 days
    Job("send text messages", timedelta(seconds=5), text_sending.send_pending),
]


def chosen_jobs(names: list[str]) -> list[Job]:
    """The jobs named (as `JOBS` names them), in `JOBS` order; ValueError naming the jobs there are for a
    name that is not one."""
    known = {job.name: job for job in JOBS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"No worker job is called {', '.join(repr(n) for n in unknown)}. The jobs are: {', '.join(known)}.")
    return [job for job in JOBS if job.name in names]


def run(db: Database, *, jobs: list[Job] | None = None, once: bool = False, stop: threading.Event | None = None, tick: float = 1.0) -> None:
    """Run `jobs` (default: all) on their schedules; with `once`, run each one time and return."""
    jobs = JOBS if jobs is None else jobs
    stop = stop or threading.Event()
    last_run: dict[str, float] = {}
    while not stop.is_set():
        for job in jobs:
            now = time.monotonic()
            if job.name in last_run and now - last_run[job.name] < job.every.total_seconds():
                continue
            last_run[job.name] = now
            try:
                result = job.run(db)
                if result:
                    log.info("job %s: %s", job.name, result)
            except Exception as exc:  # one failing job must not stop the others
                log.error("job %s failed: %s", job.name, type(exc).__name__)
            if stop.is_set():
                return
        if once:
            return
        stop.wait(tick)


def run_forever(db: Database, *, jobs: list[Job] | None = None) -> None:
    """Run `jobs` (default: all) until SIGINT or SIGTERM, finishing the job in hand first."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("worker started")
    run(db, jobs=jobs, stop=stop)
    log.info("worker stopped")
