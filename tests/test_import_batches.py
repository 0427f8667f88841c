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
    here, there = list(batches.prepared(job)), list(batches._Child(job))
    assert len(here) == 7 and there == here  # rejections, cleaned columns, lines, row counts and progress alike
    assert list(batches._Child(job, after=300)) == here[1:]  # the first batch made here, the rest there
    assert [r.line for rejected, *_ in there for r in rejected] == bad_lines
    assert [rows_read for _r, _b, rows_read, _f in there] == [300, 600, 900, 1200, 1500, 1800, 2000]
    assert there[-1][3] == 1.0


def test_a_large_file_of_new_rows_goes_through_the_child_and_lands_the_same(db, staff, tmp_path, monkeypatch):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=1_000, malformed_every=100)
    kind, chosen = mapping.preset("Koha borrowers")
    children, received = [], []
    popen, with_dates = subprocess.Popen, batches._with_dates

    def spawning(command, **kw):
        children.append(popen(command, **kw))
        return children[-1]

    def receiving(item, dated):
        received.append(item[2])
        return with_dates(item, dated)

    monkeypatch.setattr(batches, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(batches.subprocess, "Popen", spawning)
    monkeypatch.setattr(batches, "_with_dates", receiving)

    def run(**kw):
        fractions = []
        summary = imports.run_import(db, actor=staff["admin"], kind=kind, path=path, mapping=chosen, batch_size=300,
                                     progress=lambda fraction, _summary: fractions.append(fraction), **kw)
        assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 5  # 4 batches, then done
        assert all(child.returncode is not None for child in children)  # no reading process outlives its run
        return summary

    dry = run(dry_run=True)
    assert len(children) == 1 and not received  # a dry run writes nothing: its child is stopped unused
    done = run()
    assert len(children) == 2 and received == [600, 900, 1_000]  # the first batch was all new: the rest came from the child
    assert (done.total, done.new, len(done.rejected)) == (dry.total, dry.new, len(dry.rejected)) == (1_000, 990, 10)
    assert [r.line for r in done.rejected] == [r.line for r in dry.rejected]
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(Patron)).one() == 990
    again = run()
    assert (again.new, again.updated, again.unchanged) == (0, 0, 990)
    assert len(children) == 3 and len(received) == 3  # unchanged rows, little to write: made here


def test_a_failed_write_stops_the_child_at_once(db, staff, tmp_path, monkeypatch):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=3_000)
    children, writes = [], []
    popen, write = subprocess.Popen, PatronImport.write

    def spawning(command, **kw):
        children.append(popen(command, **kw))
        return children[-1]

    def failing(self, session, batch, **kw):
        writes.append(len(batch))
        if len(writes) == 3:
            raise RuntimeError("the disk is full")
        return write(self, session, batch, **kw)

    monkeypatch.setattr(batches, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(batches.subprocess, "Popen", spawning)
    monkeypatch.setattr(PatronImport, "write", failing)
    kind, chosen = mapping.preset("Koha borrowers")
    try:
        imports.run_import(db, actor=staff["admin"], kind=kind, path=path, mapping=chosen, batch_size=300)
    except RuntimeError as exc:
        assert str(exc) == "the disk is full"
        stopped = [child.returncode is not None for child in children]  # while the error (and its frames) is in hand
    else:
        pytest.fail("the import should have failed")
    assert stopped == [True]
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(Patron)).one() == 600  # the two batches written before


def test_an_error_in_the_child_is_raised_here(tmp_path):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=10)
    with pytest.raises(KeyError, match="no such column"):
        list(batches._Child(job_for(path, columns={"ils_id": "no such column"})))


def test_a_child_that_dies_is_reported_clearly(tmp_path, monkeypatch):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=10)
    monkeypatch.setattr(batches.sys, "executable", "/bin/false")  # a "Python" that exits at once
    with pytest.raises(RuntimeError, match=r"the process reading koha.csv stopped unexpectedly \(exit code 1\)"):
        list(batches._Child(job_for(path)))
