"""A large file is read, cleaned and prepared in a second process while this one writes: the same
batches, in the same order, as in one process; its errors reach the run; it never outlives the import."""

import subprocess
from datetime import datetime, timezone

import pytest
from sqlmodel import func, select

from crmcore import imports
from crmcore.imports import batches, koha_sample, mapping, reading
from crmcore.imports.patrons import PatronImport
from crmcore.models import Patron


def job_for(path, columns=None, batch_size=300) -> batches.Job:
    fmt = reading.sniff(path)
    kind, chosen = mapping.preset("Koha borrowers")
    chosen = mapping.clean_mapping(kind, chosen, fmt.header) if columns is None else {**chosen, "columns": columns}
    args = {"mapping": chosen, "file_name": path.name, "now": datetime(2026, 11, 23, tzinfo=timezone.utc), "actor": None}
    return batches.Job(kind, chosen, fmt, path, batch_size, PatronImport, args)


def test_the_child_makes_the_same_batches_as_this_process(tmp_path):
    path = tmp_path / "koha.csv"
    bad_lines = koha_sample.write(path, rows=2_000, malformed_every=40)
    job = job_for(path)
    here, there = list(batches.prepared(job)), list(batches._from_child(job))
    assert len(here) == 7 and there == here  # rejections, cleaned columns, lines, row counts and progress alike
    assert [r.line for rejected, *_ in there for r in rejected] == bad_lines
    assert [rows_read for _r, _b, rows_read, _f in there] == [300, 600, 900, 1200, 1500, 1800, 2000]
    assert there[-1][3] == 1.0


def test_a_file_over_the_threshold_goes_through_the_child_and_lands_the_same(db, staff, tmp_path, monkeypatch):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=1_000, malformed_every=100)
    kind, chosen = mapping.preset("Koha borrowers")
    dry = imports.run_import(db, actor=staff["admin"], kind=kind, path=path, mapping=chosen, dry_run=True, batch_size=300)
    started = []
    popen = subprocess.Popen

    def spawning(command, **kw):
        started.append(command)
        return popen(command, **kw)

    monkeypatch.setattr(batches, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(batches.subprocess, "Popen", spawning)
    fractions = []
    done = imports.run_import(db, actor=staff["admin"], kind=kind, path=path, mapping=chosen, batch_size=300,
                              progress=lambda fraction, _summary: fractions.append(fraction))
    assert len(started) == 1 and "_make_in_child" in started[0][-1]
    assert (done.total, done.new, len(done.rejected)) == (dry.total, dry.new, len(dry.rejected)) == (1_000, 990, 10)
    assert [r.line for r in done.rejected] == [r.line for r in dry.rejected]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 5  # 4 batches, then done
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(Patron)).one() == 990
    again = imports.run_import(db, actor=staff["admin"], kind=kind, path=path, mapping=chosen, batch_size=300)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 990) and len(started) == 2


def test_an_error_in_the_child_is_raised_here(tmp_path):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=10)
    with pytest.raises(KeyError, match="no such column"):
        list(batches._from_child(job_for(path, columns={"ils_id": "no such column"})))


def test_a_child_that_dies_is_reported_clearly(tmp_path, monkeypatch):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=10)
    monkeypatch.setattr(batches.sys, "executable", "/bin/false")  # a "Python" that exits at once
    with pytest.raises(RuntimeError, match=r"the process reading koha.csv stopped unexpectedly \(exit code 1\)"):
        list(batches._from_child(job_for(path)))
