"""Running an import: stream the file, clean it a batch at a time, write each batch all or nothing, record the run.

Each batch is one write transaction that also moves the run's counters, so a process killed at any
moment leaves whole batches and matching counts; running the same file again lands the rest (rows
already there are unchanged and skipped). A dry run does everything but write. For a kind whose
importer says so (`run_marks`: activity), a file that an earlier run imported completely, read the same
way, is not read again: every row of it is there already. A large file is read
and cleaned in a second process while this one writes (batches.py).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, update
from sqlmodel import Session, select

from crmcore import exports
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.bulk import indexes_deferred
from crmcore.db import Database
from crmcore.imports import batches, reading
from crmcore.imports.activity_rows import ActivityImport
from crmcore.imports.attendance import AttendanceImport
from crmcore.imports.batch import Rejected
from crmcore.imports.catalogue import CatalogueImport
from crmcore.imports.circulation import CirculationImport
from crmcore.imports.library_survey import LibrarySurveyImport
from crmcore.imports.mapping import check_kind, clean_mapping, mapping_notes
from crmcore.imports.organizations import OrganizationImport
from crmcore.imports.patrons import PatronImport
from crmcore.imports.zones import ZoneImport
from crmcore.models import ImportRun, utcnow
from crmcore.privacy import audit

IMPORTERS = {
    "patrons": PatronImport,
    "activity": ActivityImport,
    "circulation": CirculationImport,
    "attendance": AttendanceImport,
    "zones": ZoneImport,
    "organizations": OrganizationImport,
    "library_survey": LibrarySurveyImport,
    "catalogue": CatalogueImport,
}
BATCH_SIZE = 20_000
RUN = ImportRun.__table__

Progress = Callable[[float, "Summary"], None]


@dataclass
class Summary:
    """What a run did (or, dry, would do)."""

    run_id: int
    kind: str
    file_name: str
    file_hash: str
    dry_run: bool
    file_format: str = ""
    total: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def nothing_changed(self) -> bool:
        return self.new == 0 and self.updated == 0

    def counts(self) -> dict[str, int]:
        return {"rows": self.total, "new": self.new, "updated": self.updated, "unchanged": self.unchanged, "rejected": len(self.rejected)}

    def describe(self) -> str:
        """One paragraph for a person."""
        text = (
            f"{self.file_name}: {self.total:,} rows — {self.new:,} new, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged, {len(self.rejected):,} rejected ({'dry run: nothing written' if self.dry_run else 'imported'})."
        )
        if self.total and self.nothing_changed and not self.rejected:
            text += f" Nothing changed: every row {'is' if self.dry_run else 'was'} already in Liaison as it is in the file."
        return " ".join([text, *self.notes])

    def errors_frame(self) -> pd.DataFrame:
        rows = sorted(self.rejected, key=lambda r: r.line)
        return pd.DataFrame({"line": [r.line for r in rows], "field": [r.field for r in rows], "reason": [r.reason for r in rows]})

    def errors_csv(self) -> bytes:
        """The error file: line, field and reason of every rejected row (formula cells neutralised)."""
        return exports.to_csv(self.errors_frame())


def run_import(
    db: Database,
    *,
    actor: Actor,
    kind: str,
    path: Path,
    mapping: dict[str, Any],
    file_name: str | None = None,
    dry_run: bool = False,
    geojson: Path | None = None,
    geojson_name: str | None = None,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> Summary:
    """Import (or dry-run) one file; ValueError with a clear message when the file or mapping is unusable.
    `file_name`, `geojson_name`: the names the files had when uploaded, for the summary."""
    require(actor, Perm.IMPORT_DATA)
    check_kind(kind)
    path = Path(path)
    file_name = file_name or path.name
    reading.check_size(path, name=file_name)
    if geojson is not None:
        reading.check_size(Path(geojson), name=Path(geojson).name)
    fmt = reading.sniff(path, name=file_name)
    mapping = clean_mapping(kind, mapping, fmt.header)
    file_hash = reading.sha256(path)
    now = utcnow()
    marks = getattr(IMPORTERS[kind], "run_marks", None)  # how the importer reads a file, recorded with the mapping
    recorded = {**mapping, **marks} if marks else mapping
    with db.write() as session:
        earlier = _complete_run(session, kind=kind, file_hash=file_hash, recorded=recorded) if marks and not dry_run else None
        run = ImportRun(kind=kind, file_name=file_name[:300], file_hash=file_hash, actor_id=actor.id, dry_run=dry_run, mapping=recorded, started_at=now)
        session.add(run)
        session.flush()
        run_id = run.id
    summary = Summary(run_id=run_id, kind=kind, file_name=file_name, file_hash=file_hash, dry_run=dry_run, file_format=fmt.describe(),
                      notes=mapping_notes(mapping))
    if earlier is not None:
        summary.total = summary.unchanged = earlier.rows_total
        summary.notes.append(
            f"This file (the same bytes, with the same mapping) was imported completely on {earlier.started_at:%d %B %Y} "
            f"(import {earlier.id}): every row of it is in Liaison already, so it was not read again."
        )
        _close(db, summary, actor, status="done")
        if progress:
            progress(1.0, summary)
        return summary
    importer_args = {"mapping": mapping, "file_name": file_name, "now": now, "actor": actor}
    before = _size(db, IMPORTERS[kind])
    importer = IMPORTERS[kind](**importer_args)
    try:
        if geojson is not None:
            importer.geojson = Path(geojson)
            importer.geojson_name = geojson_name or Path(geojson).name
        with _cycle_collector_paused():
            with _first_load(db, importer, dry_run=dry_run):
                job = batches.Job(kind, mapping, fmt, path, batch_size, IMPORTERS[kind], importer_args)

                def writing() -> bool:  # most rows so far were new or changed
                    return not dry_run and 2 * (summary.new + summary.updated) >= summary.total

                _stream(db, summary, importer, batches.batches(job, importer, writing=writing), progress)
                if hasattr(importer, "loaded"):
                    importer.loaded(db)  # may start reading what finish() needs while the indexes are built
            summary.notes.extend(importer.finish(db, dry_run=dry_run))
            if getattr(importer, "totals", None) is not None:  # an importer that counts what it stores, not rows (circulation cells)
                summary.new, summary.updated, summary.unchanged = importer.totals
    except Exception as exc:
        _close(db, summary, actor, status="failed", error=str(exc)[:1000])
        raise
    _close(db, summary, actor, status="done")
    if not dry_run and not summary.nothing_changed and _reshapes(summary, before):
        db.analyze()  # the planner's statistics follow the data segments and dashboards read
    if progress:
        progress(1.0, summary)
    return summary


ANALYZE_SHARE = 0.05


def _size(db: Database, importer) -> int | None:
    """About how many rows the importer's main table holds (its highest id: one index seek); None for the
    kinds without one (small tables)."""
    tables = getattr(importer, "bulk_tables", ())
    if not tables:
        return None
    with db.read() as session:
        return session.execute(select(func.max(tables[0].c.id))).scalar() or 0


def _reshapes(summary: Summary, before: int | None) -> bool:
    """Whether the run changed enough rows for the planner's statistics to need refreshing: a day's activity
    added to twenty million events leaves them as good as they were (ANALYZE of the whole database costs
    seconds at a million patrons; PostgreSQL's autovacuum and the worker's PRAGMA optimize catch up)."""
    return before is None or summary.new + summary.updated >= ANALYZE_SHARE * before


def _complete_run(session: Session, *, kind: str, file_hash: str, recorded: dict[str, Any]) -> ImportRun | None:
    """An earlier run of this very file, read the same way, that stored or found every row (none rejected):
    importing it again can add nothing (for kinds whose rows, once stored, stay until retention or erasure
    removes them, which a re-import must not undo)."""
    runs = session.exec(
        select(ImportRun)
        .where(ImportRun.kind == kind, ImportRun.file_hash == file_hash, ImportRun.status == "done", ImportRun.dry_run.is_(False), ImportRun.rows_rejected == 0)
        .order_by(ImportRun.id.desc())
    )
    for run in runs:
        if run.mapping == recorded and run.rows_total > 0 and run.rows_new + run.rows_unchanged == run.rows_total:
            return run
    return None


@contextmanager
def _first_load(db: Database, importer, *, dry_run: bool) -> Iterator[None]:
    """Into empty tables (a library's first import), load without secondary indexes and build them at the end."""
    tables = getattr(importer, "bulk_tables", ())
    if dry_run or not tables:
        yield
        return
    with db.writer() as conn:
        with conn.begin():
            empty = conn.execute(select(tables[0].c[0]).limit(1)).first() is None
        if not empty:
            yield
            return
        with indexes_deferred(conn, tables):
            yield


def _stream(db: Database, summary: Summary, importer, prepared: Iterator[batches.Item], progress) -> None:
    with closing(prepared):  # a failed write stops a reading process at once, not when the error is forgotten
        for rejected, ready, rows_read, fraction in prepared:
            _write(db, summary, importer, rejected, ready, rows_read)
            if progress:
                progress(fraction, summary)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off for a run: each batch makes hundreds of thousands of short-lived
    lists and tuples, and the collector's passes over them cost more than cleaning them. An import
    makes no reference cycles; whatever other code made meanwhile is collected afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _write(db: Database, summary: Summary, importer, rejected: list[Rejected], prepared, total: int) -> None:
    """One batch, all or nothing, together with the run's counters (its rows rejected while cleaning included)."""
    summary.rejected.extend(rejected)
    if summary.dry_run:
        with db.read() as session:
            result = importer.write(session, prepared, dry_run=True)
        _add(summary, result, total)
    else:
        with db.write() as session:
            result = importer.write(session, prepared, dry_run=False)
            _save_counts(session, summary, result, total)


def _add(summary: Summary, result, total: int) -> None:
    summary.total = total
    summary.new += result.new
    summary.updated += result.updated
    summary.unchanged += result.unchanged
    summary.rejected.extend(result.rejected)


def _save_counts(session: Session, summary: Summary, result, total: int) -> None:
    _add(summary, result, total)
    session.execute(
        update(RUN)
        .where(RUN.c.id == summary.run_id)
        .values(rows_total=summary.total, rows_new=summary.new, rows_updated=summary.updated, rows_unchanged=summary.unchanged, rows_rejected=len(summary.rejected))
    )


def _close(db: Database, summary: Summary, actor: Actor, *, status: str, error: str | None = None) -> None:
    with db.write() as session:
        session.execute(
            update(RUN)
            .where(RUN.c.id == summary.run_id)
            .values(status=status, error=error, finished_at=utcnow(), rows_total=summary.total, rows_new=summary.new,
                    rows_updated=summary.updated, rows_unchanged=summary.unchanged, rows_rejected=len(summary.rejected))
        )
        if status == "done" and not summary.dry_run:
            # An earlier run of the same file that never finished (killed) is now complete.
            session.execute(
                update(RUN)
                .where(RUN.c.file_hash == summary.file_hash, RUN.c.kind == summary.kind, RUN.c.status == "running", RUN.c.id != summary.run_id)
                .values(status="interrupted")
            )
        detail = {"kind": summary.kind, "file_name": summary.file_name, "file_sha256": summary.file_hash, "dry_run": summary.dry_run, "status": status, **summary.counts()}
        audit.record(session, actor=actor, action="import.dry_run" if summary.dry_run else "import.run", entity="import_run", entity_id=summary.run_id, detail=detail)


def recent_runs(session: Session, *, actor: Actor, limit: int = 20) -> pd.DataFrame:
    """The latest import runs, newest first, for the import page."""
    require(actor, Perm.IMPORT_DATA)
    rows = session.exec(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit)).all()
    return pd.DataFrame(
        [
            {"id": r.id, "kind": r.kind, "file": r.file_name, "dry run": r.dry_run, "status": r.status, "started": r.started_at,
             "rows": r.rows_total, "new": r.rows_new, "updated": r.rows_updated, "unchanged": r.rows_unchanged, "rejected": r.rows_rejected}
            for r in rows
        ],
        columns=["id", "kind", "file", "dry run", "status", "started", "rows", "new", "updated", "unchanged", "rejected"],
    )
