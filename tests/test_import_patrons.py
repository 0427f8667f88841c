"""Patron imports on real export formats: presets, idempotent re-import, rejects with their lines,
the allowlist, consent from notice preferences, generated ids and the run record."""

import csv
import threading
from pathlib import Path

import pytest
from sqlmodel import func, select

from crmcore import bulk, imports, kpis
from crmcore.admin.permissions import PermissionDenied
from crmcore.imports import koha_sample, mapping
from crmcore.library import consent
from crmcore.models import (
    AuditLog,
    Branch,
    ConsentRecord,
    CurrentConsent,
    DashCohort,
    DashFlow,
    DashRegistration,
    DashState,
    ImportRun,
    Patron,
    Zone,
)

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def run(db, actor, path, preset="Koha borrowers", **kw):
    kind, chosen = mapping.preset(preset) if isinstance(preset, str) else preset
    return imports.run_import(db, actor=actor, kind=kind, path=path, mapping=chosen, **kw)


def count(db, model, *where):
    with db.read() as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def test_koha_sample_lands_then_reimport_changes_nothing(db, staff):
    first = run(db, staff["admin"], SAMPLES / "koha_borrowers.csv")
    assert (first.total, first.new, first.updated, len(first.rejected)) == (20, 20, 0, 0)
    with db.read() as s:
        zoe = s.exec(select(Patron).where(Patron.first_name == "Zoë")).one()
        assert zoe.last_name == "O'Brien" and zoe.branch_id is not None and zoe.zone_id is not None
        assert zoe.registered_on is not None and 1940 <= zoe.birth_year <= 2020
        stamp = zoe.updated_at
    again = run(db, staff["admin"], SAMPLES / "koha_borrowers.csv")
    assert (again.new, again.updated, again.unchanged) == (0, 0, 20)
    assert again.nothing_changed and "Nothing changed: every row was already in Liaison" in again.describe()
    with db.read() as s:
        assert s.get(Patron, zoe.id).updated_at == stamp  # not rewritten
        runs = s.exec(select(ImportRun).order_by(ImportRun.id)).all()
    assert [(r.status, r.rows_new, r.rows_unchanged, r.actor_id) for r in runs] == [("done", 20, 0, staff["admin"].id), ("done", 0, 20, staff["admin"].id)]
    assert len(runs[0].file_hash) == 64 and runs[0].file_name == "koha_borrowers.csv"
    assert count(db, AuditLog, AuditLog.action == "import.run") == 2


def test_a_patron_import_brings_the_dashboard_summaries_up_to_date(db, staff):
    latest = select(func.max(DashState.month))
    assert count(db, DashState) == 0
    summary = run(db, staff["admin"], SAMPLES / "koha_borrowers.csv")
    assert "Dashboard figures updated." in summary.describe()
    with db.read() as s:
        month = s.exec(latest).one()
        counted = s.exec(select(func.sum(DashState.patrons)).where(DashState.month == month, DashState.state != "unregistered")).one()
        registered = s.exec(select(func.count()).select_from(Patron).where(Patron.registered_on <= month)).one()
    assert counted == registered > 0


def summary_rows(db) -> dict[str, set]:
    with db.read() as s:
        return {m.__tablename__: {tuple(r) for r in s.exec(select(*m.__table__.c))} for m in (DashState, DashRegistration, DashFlow, DashCohort)}


def test_a_first_load_works_out_the_summaries_while_its_indexes_are_built(db, staff, tmp_path, monkeypatch):
    """The dashboard summaries of a first load are read from a snapshot taken after its last batch, in another
    thread, while the deferred indexes are built; what is stored is what a refresh afterwards gives."""
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=300)
    started, threads = threading.Event(), {}
    compute, restore = kpis.compute_summaries, bulk.restore_indexes

    def computing(session, **kw):
        threads["summaries"] = threading.get_ident()
        started.set()
        return compute(session, **kw)

    def restoring(conn, tables):
        threads["indexes"] = threading.get_ident()
        assert started.wait(30), "the summaries were not being worked out while the indexes were built"
        restore(conn, tables)

    monkeypatch.setattr(kpis, "compute_summaries", computing)
    monkeypatch.setattr(bulk, "restore_indexes", restoring)
    run(db, staff["admin"], path, batch_size=70)
    assert threads["summaries"] != threads["indexes"] == threading.get_ident()
    stored = summary_rows(db)
    assert sum(len(rows) for rows in stored.values()) > 0
    with db.write() as s:
        kpis.refresh_summaries(s)
    assert summary_rows(db) == stored


def test_a_failure_working_out_the_summaries_fails_the_run_but_keeps_the_patrons(db, staff, monkeypatch):
    def broken(session, **kw):
        raise RuntimeError("summaries broke")

    monkeypatch.setattr(kpis, "compute_summaries", broken)
    with pytest.raises(RuntimeError, match="summaries broke"):
        run(db, staff["admin"], SAMPLES / "koha_borrowers.csv")
    assert count(db, Patron) == 20  # every batch was written before the summaries were read
    with db.read() as s:
        assert s.exec(select(ImportRun.status, ImportRun.error)).one() == ("failed", "summaries broke")


def test_changed_rows_are_updated_and_only_mapped_columns_touched(db, staff, tmp_path):
    run(db, staff["admin"], SAMPLES / "koha_borrowers.csv")
    with db.write() as s:
        patron = s.exec(select(Patron).where(Patron.ils_id == "2000000001")).one()
        patron.interests = "knitting"  # not in the Koha mapping: an import must leave it
        s.add(patron)
    rows = list(csv.DictReader(open(SAMPLES / "koha_borrowers.csv", encoding="utf-8")))
    rows[0]["surname"] = "Renamed"
    path = tmp_path / "koha2.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = run(db, staff["admin"], path)
    assert (result.new, result.updated, result.unchanged) == (0, 1, 19)
    with db.read() as s:
        patron = s.exec(select(Patron).where(Patron.ils_id == "2000000001")).one()
    assert patron.last_name == "Renamed" and patron.interests == "knitting"


def test_evergreen_sample(db, staff):
    result = run(db, staff["admin"], SAMPLES / "evergreen_user_stage.csv", preset="Evergreen patron load")
    assert (result.new, len(result.rejected)) == (5, 0)
    with db.read() as s:
        kai = s.exec(select(Patron).where(Patron.ils_id == "kchen")).one()
        assert (kai.first_name, kai.last_name, kai.email, kai.birth_year, kai.patron_type) == ("Kai", "Chen", None, 2014, "Juvenile")
        assert s.exec(select(Branch.code).order_by(Branch.code)).all() == ["BR1", "BR2", "BR3"]


def test_one_percent_malformed_rows_are_rejected_each_with_its_line(db, staff, tmp_path):
    path = tmp_path / "koha.csv"
    bad_lines = koha_sample.write(path, rows=300, malformed_every=100)
    result = run(db, staff["admin"], path, batch_size=64)
    assert [r.line for r in result.rejected] == bad_lines == [101, 201, 301]
    assert {r.field for r in result.rejected} == {"email"}
    assert count(db, Patron) == 297
    errors = list(csv.reader(result.errors_csv().decode("utf-8-sig").splitlines()))
    assert errors[0] == ["line", "field", "reason"] and [int(r[0]) for r in errors[1:]] == bad_lines
    assert "not a valid email" in errors[1][2]


def test_dry_run_reports_and_writes_nothing(db, staff):
    result = run(db, staff["admin"], SAMPLES / "koha_borrowers.csv", dry_run=True)
    assert (result.new, result.dry_run) == (20, True)
    assert count(db, Patron) == 0 and count(db, Branch) == 0 and count(db, Zone) == 0
    with db.read() as s:
        run_row = s.exec(select(ImportRun)).one()
    assert run_row.dry_run and run_row.status == "done" and run_row.rows_new == 20


def test_consent_from_the_notice_preference(db, staff):
    run(db, staff["admin"], SAMPLES / "koha_borrowers.csv")
    rows = {r["cardnumber"]: r for r in csv.DictReader(open(SAMPLES / "koha_borrowers.csv", encoding="utf-8"))}
    with db.read() as s:
        patrons = {p.ils_id: p.id for p in s.exec(select(Patron))}
        for ils_id, row in rows.items():
            has = consent.has_consent(s, patron_id=patrons[ils_id], channel="email", topic="services")
            assert has == (row["primary_contact_method"] == "email"), ils_id  # absent or other method: not consented
        records = s.exec(select(ConsentRecord)).all()
    assert records and {r.source for r in records} == {"import: koha_borrowers.csv"}
    assert all(r.granted for r in records)
    # The patron switches to phone in the ILS: email consent is withdrawn, phone granted, with history kept.
    switcher = next(k for k, r in rows.items() if r["primary_contact_method"] == "email")
    with db.write() as s:
        pid = patrons[switcher]
    path = SAMPLES.parent / "_tmp_switch.csv"
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[switcher]))
            writer.writeheader()
            writer.writerow({**rows[switcher], "primary_contact_method": "phone"})
        result = run(db, staff["admin"], path)
    finally:
        path.unlink()
    assert result.updated == 1
    with db.read() as s:
        assert not consent.has_consent(s, patron_id=pid, channel="email", topic="services")
        assert consent.has_consent(s, patron_id=pid, channel="phone", topic="services")
        assert [h.granted for h in consent.history(s, pid) if h.channel == "email"] == [False, True]


def test_patron_ids_generated_from_columns_or_row_number(db, staff, tmp_path):
    path = tmp_path / "noid.csv"
    path.write_text("First;Last;Born\nAna;Lopez;1980\nBen;Okafor;1975\n;;1990\n", encoding="utf-8")
    by_columns = {"columns": {"first_name": "First", "last_name": "Last", "birth_year": "Born"}, "id_columns": ["First", "Last", "Born"]}
    result = run(db, staff["admin"], path, preset=("patrons", by_columns))
    assert result.new == 3 and not result.rejected  # the third row still has Born
    again = run(db, staff["admin"], path, preset=("patrons", by_columns))
    assert again.unchanged == 3
    with db.read() as s:
        assert all(i.startswith("gen-") for i in s.exec(select(Patron.ils_id)))
    by_row = run(db, staff["admin"], path, preset=("patrons", {"columns": {"first_name": "First"}, "id_from_row": True}))
    assert by_row.new == 3
    with db.read() as s:
        assert {"row-1", "row-2", "row-3"} <= set(s.exec(select(Patron.ils_id)))


def test_an_unmapped_column_is_refused_by_name_and_required_fields_must_be_mapped(db, staff):
    with pytest.raises(ValueError, match="ILS id .* must be mapped"):
        run(db, staff["admin"], SAMPLES / "koha_borrowers.csv", preset=("patrons", {"columns": {"first_name": "firstname"}}))
    with pytest.raises(ValueError, match="'title' is not a field"):
        run(db, staff["admin"], SAMPLES / "koha_borrowers.csv", preset=("patrons", {"columns": {"ils_id": "cardnumber", "title": "title"}}))
    with pytest.raises(ValueError, match="column 'nope'"):
        run(db, staff["admin"], SAMPLES / "koha_borrowers.csv", preset=("patrons", {"columns": {"ils_id": "nope"}}))


@pytest.mark.parametrize("role", ["manager", "outreach", "viewer"])
def test_only_admins_import(db, staff, role):
    with pytest.raises(PermissionDenied):
        run(db, staff[role], SAMPLES / "koha_borrowers.csv")
    assert count(db, ImportRun) == 0


def test_allowlist_unmapped_values_appear_nowhere_in_the_database_file(sqlite_db, tmp_path):
    from crmcore.admin.auth import CLI_ACTOR

    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=200)
    run(sqlite_db, CLI_ACTOR, path)
    run(sqlite_db, CLI_ACTOR, path, dry_run=True)
    sqlite_db.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("crm.db*"))
    assert b"2000000007" in raw  # mapped values are there …
    for secret in (b"NOTE-SECRET-", b"PWHASH-", b"user17", b"Main St", b"borrowernotes", b"userid"):
        assert secret not in raw  # … unmapped columns' values (and names) are not, not even in import_run or the audit log


def test_erased_patrons_are_not_reimported(db, staff):
    run(db, staff["admin"], SAMPLES / "koha_borrowers.csv")
    with db.write() as s:
        patron = s.exec(select(Patron).where(Patron.ils_id == "2000000003")).one()
        patron.first_name = patron.last_name = patron.email = None
        patron.erased_at, patron.row_hash = patron.updated_at, None
        s.add(patron)
    result = run(db, staff["admin"], SAMPLES / "koha_borrowers.csv")
    assert [(r.field, r.line) for r in result.rejected] == [("ils_id", 4)]
    with db.read() as s:
        assert s.exec(select(Patron.first_name).where(Patron.ils_id == "2000000003")).one() is None


def test_a_later_import_never_undoes_what_the_patron_chose_on_their_preference_page(db, staff, tmp_path):
    """Reading history turned off and interests cleared by the patron stay so, whatever the ILS says next."""
    from crmcore.campaigns import preference_tokens, preferences

    chosen = ("patrons", {"columns": {"ils_id": "card", "last_name": "surname", "interests": "likes", "history_opt_in": "history"}})

    def load(rows: list[tuple[str, str, str, str]]):
        path = tmp_path / "patrons.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["card", "surname", "likes", "history"])
            writer.writerows(rows)
        return run(db, staff["admin"], path, preset=chosen)

    load([("C1", "Ames", "Mystery", "yes"), ("C2", "Bell", "Cooking", "yes")])
    with db.write() as s:
        first = s.exec(select(Patron).where(Patron.ils_id == "C1")).one()
        token = preference_tokens.make(first.id)
        preferences.stop_history(s, token=token)
        preferences.clear_interests(s, token=token)
    result = load([("C1", "Ames-Renamed", "Mystery; Gardening", "yes"), ("C2", "Bell", "Cooking; Travel", "no")])
    assert result.updated == 2
    with db.read() as s:
        first, second = (s.exec(select(Patron).where(Patron.ils_id == key)).one() for key in ("C1", "C2"))
    assert (first.last_name, first.history_opt_in, first.interests) == ("Ames-Renamed", False, None)  # the patron's choices hold
    assert (second.history_opt_in, second.interests) == (False, "Cooking; Travel")  # the ILS still updates everyone else


def test_a_batch_of_hundreds_of_rows_written_set_based_gives_what_row_by_row_writing_gives(db, staff, tmp_path, monkeypatch):
    """A batch of bulk.STAGE_MIN rows or more goes in set-based (on PostgreSQL: COPY into a staging table, one
    INSERT … ON CONFLICT from it): the same patrons, consent history and current consent as row by row, with a
    patron named twice in the file ending as its last row says and a patron's own withdrawal standing."""
    base = list(csv.DictReader(open(_sample(tmp_path), encoding="utf-8")))

    def scenario(prefix: str):
        rows = [{**r, "cardnumber": prefix + r["cardnumber"]} for r in base]
        first = run(db, staff["admin"], _write(tmp_path / f"{prefix}1.csv", rows))
        with db.write() as s:
            withdrawn = s.exec(select(Patron.id).where(Patron.ils_id == rows[4]["cardnumber"])).one()
            consent.record(s, patron_id=withdrawn, channel="email", topic="services", granted=False, source="preference page", by=consent.PATRON)
        changed = [{**r, "surname": "Changed", "primary_contact_method": "phone"} if k < 30 else r for k, r in enumerate(rows)]
        twice = [{**r, "surname": "Twice", "primary_contact_method": "email"} for r in rows[:30]]
        second = run(db, staff["admin"], _write(tmp_path / f"{prefix}2.csv", changed + twice))
        return [(r.new, r.updated, r.unchanged, len(r.rejected)) for r in (first, second)], _snapshot(db, prefix)

    staged = scenario("S")
    monkeypatch.setattr(bulk, "STAGE_MIN", 10**9)  # every batch row by row (executemany)
    assert scenario("R") == staged
    counts, (patrons, current, history) = staged
    assert counts == [(300, 0, 0, 0), (0, 60, 270, 0)]
    assert {p[1] for ils, p in patrons.items() if int(ils) <= 2000000030} == {"Twice"}
    fifth = next(ils for ils in patrons if int(ils) == 2000000005)
    assert current[(fifth, "email", "services")] == (False, consent.PATRON)  # the patron's own choice stands


def _sample(tmp_path: Path) -> Path:
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=300)
    return path


def _write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _snapshot(db, prefix: str) -> tuple[dict, dict, list]:
    """Patrons, current consent and consent history of the patrons whose ids start with `prefix`, keyed without it."""
    with db.read() as s:
        patrons = {p.ils_id: p for p in s.exec(select(Patron).where(Patron.ils_id.startswith(prefix)))}
        ids = {p.id: ils[len(prefix):] for ils, p in patrons.items()}
        current = {(ids[c.patron_id], c.channel, c.topic): (c.granted, c.source_class) for c in s.exec(select(CurrentConsent)) if c.patron_id in ids}
        history = sorted((ids[r.patron_id], r.channel, r.topic, r.granted, r.source_class) for r in s.exec(select(ConsentRecord)) if r.patron_id in ids)
    shown = {ils[len(prefix):]: (p.first_name, p.last_name, p.email, p.phone, p.birth_year, p.patron_type, p.registered_on, p.expires_on,
                                 p.preferred_channel, p.ils_consent) for ils, p in patrons.items()}
    return shown, current, history
