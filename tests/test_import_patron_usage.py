"""An anonymised patron usage export as large public libraries publish it (no id column, year-only dates,
lowercase booleans, 'None' as a year, month names, blank zones): imported with a mapping, every group
Liaison stores equals pandas on the same file, segments on the new fields count what pandas counts, and a
re-sorted file with row-number ids is warned about."""

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import func, select

from crmcore import cli, imports
from crmcore.campaigns import segments
from crmcore.campaigns.rules import language as segments_language
from crmcore.campaigns.rules import tree
from crmcore.campaigns.rules.language import FIELDS
from crmcore.imports import mapping, values
from crmcore.imports.cleaning import Cleaner
from crmcore.imports.patrons import ROW_ID_WARNING
from crmcore.library import patrons
from crmcore.privacy import rights
from crmcore.models import ActivityEvent, Branch, Patron, Zone

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "patron_usage.csv"
MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
TODAY = date(2026, 12, 3)

USAGE = {
    "columns": {
        "patron_type": "Patron Type Definition", "lifetime_checkouts": "Total Checkouts", "lifetime_renewals": "Total Renewals",
        "age_band": "Age Range", "branch": "Home Library Definition", "contact_method": "Notice Preference Definition",
        "has_email": "Provided Email Address", "registered_on": "Year Patron Registered", "non_resident": "Outside of County",
        "zone": "Supervisor District",
    },
    "year_month": {"last_activity": {"year": "Circulation Active Year", "month": "Circulation Active Month"}},
    "id_from_row": True,
}


def frame() -> pd.DataFrame:
    """The file as pandas reads it, with the quirks turned into values by pandas' own means."""
    df = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    df["checkouts"] = df["Total Checkouts"].str.replace(",", "").astype(int)
    df["renewals"] = df["Total Renewals"].astype(int)
    active = df["Circulation Active Year"] != "None"
    month = df["Circulation Active Month"].str[:3].str.lower().map(MONTHS)
    df["last"] = pd.NaT
    df.loc[active, "last"] = pd.to_datetime(
        pd.DataFrame({"year": df.loc[active, "Circulation Active Year"].astype(int), "month": month[active], "day": 1})
    )
    df["resident"] = df["Outside of County"] == "false"
    df["has_email"] = df["Provided Email Address"] == "true"
    return df


def load(db, actor, path=FIXTURE, **kw):
    return imports.run_import(db, actor=actor, kind="patrons", path=path, mapping=USAGE, **kw)


def stored(db) -> pd.DataFrame:
    with db.read() as s:
        rows = s.exec(
            select(Patron.ils_id, Patron.patron_type, Patron.age_band, Branch.code, Zone.code, Patron.resident, Patron.has_email,
                   Patron.lifetime_checkouts, Patron.lifetime_renewals, Patron.ils_last_activity_on, Patron.last_activity_on, Patron.registered_on)
            .outerjoin(Branch, Branch.id == Patron.branch_id)
            .outerjoin(Zone, Zone.id == Patron.zone_id)
        ).all()
    return pd.DataFrame(rows, columns=["ils_id", "type", "age", "branch", "zone", "resident", "has_email", "checkouts", "renewals", "ils_last", "last", "registered"])


def groups(series: pd.Series) -> dict:
    return {("" if pd.isna(k) else k): int(v) for k, v in series.value_counts(dropna=False).items()}


def test_every_group_of_a_usage_export_equals_pandas(db, staff):
    df = frame()
    summary = load(db, staff["admin"])
    assert (summary.total, summary.new, len(summary.rejected)) == (len(df), len(df), 0), summary.describe()
    got = stored(db)
    assert len(got) == len(df)
    assert groups(got["type"]) == groups(df["Patron Type Definition"])
    assert groups(got["age"]) == groups(df["Age Range"])
    assert groups(got["branch"]) == groups(df["Home Library Definition"])
    assert groups(got["zone"].fillna("")) == groups(df["Supervisor District"])  # blank zones stay without a zone
    assert groups(got["resident"]) == groups(df["resident"])
    assert groups(got["has_email"]) == groups(df["has_email"])
    assert int(got["checkouts"].sum()) == int(df["checkouts"].sum()) and int(got["renewals"].sum()) == int(df["renewals"].sum())
    months = lambda s: groups(pd.to_datetime(s).dt.strftime("%Y-%m").fillna("never"))  # noqa: E731
    assert months(got["ils_last"]) == months(df["last"])
    assert months(got["last"]) == months(df["last"])  # no activity imported: the ILS's date is the last activity
    assert groups(pd.to_datetime(got["registered"]).dt.year) == groups(df["Year Patron Registered"].astype(int))
    # The row number is the id: row k of the file is patron row-k.
    first = got.set_index("ils_id").loc["row-1"]
    assert first["type"] == df.loc[0, "Patron Type Definition"] and first["checkouts"] == df.loc[0, "checkouts"]
    again = load(db, staff["admin"])
    assert (again.new, again.updated, again.unchanged) == (0, 0, len(df)) and ROW_ID_WARNING not in again.describe()


def test_segments_on_the_new_fields_count_what_pandas_counts(db, staff):
    df = frame()
    load(db, staff["admin"])
    days = (pd.Timestamp(TODAY) - df["last"]).dt.days
    cases = [
        ({"field": "has_email", "op": "is", "value": True}, df["has_email"]),
        ({"field": "has_email", "op": "is", "value": False}, ~df["has_email"]),
        ({"field": "resident", "op": "is", "value": True}, df["resident"]),
        ({"field": "resident", "op": "is", "value": False}, ~df["resident"]),
        ({"field": "lifetime_checkouts", "op": ">=", "value": 10}, df["checkouts"] >= 10),
        ({"field": "lifetime_checkouts", "op": "<", "value": 10}, df["checkouts"] < 10),
        ({"field": "lifetime_renewals", "op": "between", "value": [1, 50]}, df["renewals"].between(1, 50)),
        ({"field": "days_since_activity", "op": "<=", "value": 365}, days <= 365),
        ({"field": "days_since_activity", "op": "never"}, df["last"].isna()),
        ({"all": [{"field": "resident", "op": "is", "value": True}, {"field": "lifetime_checkouts", "op": ">=", "value": 25}]},
         df["resident"] & (df["checkouts"] >= 25)),
        ({"not": {"field": "lifetime_checkouts", "op": ">", "value": 0}}, df["checkouts"] <= 0),
    ]
    with db.read() as s:
        for rule, expected in cases:
            rules = rule if "field" not in rule else {"all": [rule]}
            assert segments.count(s, actor=staff["manager"], rules=rules, today=TODAY) == int(expected.sum()), rule


def test_has_email_counts_a_stored_address_too(db, staff, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("card,mail,flag\n1,ana@example.org,\n2,,true\n3,,false\n4,bo@example.org,false\n5,,\n", encoding="utf-8")
    imports.run_import(db, actor=staff["admin"], kind="patrons", path=path,
                       mapping={"columns": {"ils_id": "card", "email": "mail", "has_email": "flag"}})
    with db.read() as s:
        yes = segments.count(s, actor=staff["manager"], rules={"all": [{"field": "has_email", "op": "is", "value": True}]}, today=TODAY)
        no = segments.count(s, actor=staff["manager"], rules={"all": [{"field": "has_email", "op": "is", "value": False}]}, today=TODAY)
    assert (yes, no) == (3, 2)


def test_resident_or_its_negation_but_not_both(db, staff, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("card,in,out\n1,yes,N\n2,No,Y\n3,,\n", encoding="utf-8")
    for column in ("in", "out"):
        field = "resident" if column == "in" else "non_resident"
        imports.run_import(db, actor=staff["admin"], kind="patrons", path=path, mapping={"columns": {"ils_id": "card", field: column}})
        with db.read() as s:
            assert dict(s.exec(select(Patron.ils_id, Patron.resident)).all()) == {"1": True, "2": False, "3": None}
    with pytest.raises(ValueError, match="either Resident or Outside the service area"):
        imports.run_import(db, actor=staff["admin"], kind="patrons", path=path,
                           mapping={"columns": {"ils_id": "card", "resident": "in", "non_resident": "out"}})


def test_last_activity_is_the_later_of_the_ils_date_and_imported_activity(db, staff, tmp_path):
    patrons = tmp_path / "p.csv"
    patrons.write_text("card,last\n1,2024-05-10\n2,2023-01-31\n3,\n", encoding="utf-8")
    imports.run_import(db, actor=staff["admin"], kind="patrons", path=patrons, mapping={"columns": {"ils_id": "card", "last_activity": "last"}})
    activity = tmp_path / "a.csv"
    activity.write_text("patron,date\n1,2024-02-01\n2,2024-03-15\n3,2022-07-04\n", encoding="utf-8")
    imports.run_import(db, actor=staff["admin"], kind="activity", path=activity, mapping={"columns": {"patron": "patron", "occurred_on": "date"}})
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(ActivityEvent)).one() == 3
        last = dict(s.exec(select(Patron.ils_id, Patron.last_activity_on)).all())
        ils = dict(s.exec(select(Patron.ils_id, Patron.ils_last_activity_on)).all())
    assert last == {"1": date(2024, 5, 10), "2": date(2024, 3, 15), "3": date(2022, 7, 4)}
    assert ils == {"1": date(2024, 5, 10), "2": date(2023, 1, 31), "3": None}
    # A later ILS date moves it on; an activity file after that never moves it back.
    patrons.write_text("card,last\n1,2024-05-10\n2,2025-06-30\n3,\n", encoding="utf-8")
    imports.run_import(db, actor=staff["admin"], kind="patrons", path=patrons, mapping={"columns": {"ils_id": "card", "last_activity": "last"}})
    with db.read() as s:
        assert s.exec(select(Patron.last_activity_on).where(Patron.ils_id == "2")).one() == date(2025, 6, 30)


def test_a_resorted_file_with_row_number_ids_is_warned_about_before_and_after(db, staff, tmp_path):
    load(db, staff["admin"])
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    shuffled = tmp_path / "patron_usage_sorted.csv"
    body = lines[1:]
    shuffled.write_text(lines[0] + "".join(sorted(body, key=lambda line: (line.split(",")[3], line))), encoding="utf-8")
    dry = load(db, staff["admin"], path=shuffled, dry_run=True)
    assert ROW_ID_WARNING in dry.notes and dry.updated > len(body) // 2
    real = load(db, staff["admin"], path=shuffled)
    assert ROW_ID_WARNING in real.notes
    unchanged = load(db, staff["admin"], path=shuffled, dry_run=True)
    assert ROW_ID_WARNING not in unchanged.notes and unchanged.unchanged == len(body)
    # A few rows changed in place (the same order) is an ordinary update: no warning.
    edited = tmp_path / "edited.csv"
    rows = shuffled.read_text(encoding="utf-8").splitlines(keepends=True)
    rows[1] = rows[1].replace(",false,", ",true,", 1) if ",false," in rows[1] else rows[1].replace(",true,", ",false,", 1)
    edited.write_text("".join(rows), encoding="utf-8")
    small = load(db, staff["admin"], path=edited)
    assert small.updated == 1 and ROW_ID_WARNING not in small.notes


def test_month_names_and_implausible_years_in_year_and_month_columns(db, staff, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "card,year,month\n1,2024,May\n2,2024,sept.\n3,None,None\n4,5,May\n5,2024,13\n6,,\n7,2024,05\n8,1899,Jan\n9,2031,DEC\n10,2024,Mayo\n",
        encoding="utf-8",
    )
    chosen = {"columns": {"ils_id": "card"}, "year_month": {"last_activity": {"year": "year", "month": "month"}}}
    summary = imports.run_import(db, actor=staff["admin"], kind="patrons", path=path, mapping=chosen)
    limit = values.last_year()
    assert {(r.line, r.field, r.reason) for r in summary.rejected} == {
        (5, "last_activity", f"'5' is not a plausible year (1900–{limit})"),
        (6, "last_activity", "'13' is not a month (1–12, or a name such as May or Sep)"),
        (9, "last_activity", f"'1899' is not a plausible year (1900–{limit})"),
        (10, "last_activity", f"'2031' is not a plausible year (1900–{limit})"),
        (11, "last_activity", "'Mayo' is not a month (1–12, or a name such as May or Sep)"),
    }
    with db.read() as s:
        got = dict(s.exec(select(Patron.ils_id, Patron.ils_last_activity_on)).all())
    assert got == {"1": date(2024, 5, 1), "2": date(2024, 9, 1), "3": None, "6": None, "7": date(2024, 5, 1)}


def test_no_date_field_stores_an_implausible_year():
    header = ["card", "joined", "expires", "born", "last"]
    cleaned = mapping.clean_mapping("patrons", {"columns": {"ils_id": "card", "registered_on": "joined", "expires_on": "expires",
                                                            "birth_year": "born", "last_activity": "last"}}, header)
    limit = values.last_year()
    rows = [
        (2, ["1", "2024-01-02", "2029-12-31", "1885-02-03", "2026-11-30"]),  # a card may expire years ahead; births from 1880
        (3, ["2", "0001-05-01", "", "", ""]),
        (4, ["3", "", "", "", "5"]),
        (5, ["4", "", "", "", f"{limit + 1}-01-01"]),
        (6, ["5", "03/04/0005", "", "", ""]),
        (7, ["6", "", "", "", "1899"]),
    ]
    batch = Cleaner("patrons", {**cleaned, "date_order": "dmy"}, header).clean(rows)
    assert batch.columns["expires_on"] == [date(2029, 12, 31)] and batch.columns["birth_year"] == [1885]
    assert [(r.line, r.field, r.reason) for r in batch.rejected] == [
        (3, "registered_on", f"'0001-05-01' is not a plausible date (years 1900–{limit})"),
        (4, "last_activity", "'5' is not a date (day/month/year (31/03/2024))"),
        (5, "last_activity", f"'{limit + 1}-01-01' is not a plausible date (years 1900–{limit})"),
        (6, "registered_on", f"'03/04/0005' is not a plausible date (years 1900–{limit})"),
        (7, "last_activity", f"'1899' is not a plausible year (1900–{limit})"),
    ]


@pytest.mark.parametrize("word", ["true", "TRUE", "True", "yes", "YES", "Yes", "y", "Y", "t", "T", "1"])
def test_every_usual_yes_is_true_in_every_bool_field(word):
    assert values.parse_bool(word) is True and values.bool_column([word]) == [True]
    no = {"true": "false", "yes": "no", "y": "n", "t": "f", "1": "0"}[word.lower()]
    for form in (no, no.upper(), no.capitalize()):
        assert values.parse_bool(form) is False and values.bool_column([form]) == [False]


def test_bool_fields_of_every_kind_take_lowercase_words(db, staff, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("card,hist,email,sms,mail,res\n1,true,yes,t,True,Y\n2,false,no,f,FALSE,n\n3,maybe,,,,\n", encoding="utf-8")
    fields = {"history_opt_in": "hist", "consent_email": "email", "consent_sms": "sms", "has_email": "mail", "resident": "res"}
    summary = imports.run_import(db, actor=staff["admin"], kind="patrons", path=path, mapping={"columns": {"ils_id": "card", **fields}})
    assert [(r.line, r.field) for r in summary.rejected] == [(4, "history_opt_in")]
    assert "'maybe' is not yes/no (use true/false, yes/no, Y/N, T/F or 1/0)" == summary.rejected[0].reason
    with db.read() as s:
        got = {r[0]: r[1:] for r in s.exec(select(Patron.ils_id, Patron.history_opt_in, Patron.has_email, Patron.resident))}
    assert got == {"1": (True, True, True), "2": (False, False, False)}


def test_the_segment_builder_offers_the_new_fields_and_counts_with_them(db, staff, app):
    df = frame()
    load(db, staff["admin"])
    at = app(role="manager", page="pages/segments.py").run()
    next(b for b in at.button if b.label == "Add condition").click().run()
    field = next(s for s in at.selectbox if s.label == "Field")
    offered = {FIELDS[f].label for f in ("has_email", "resident", "lifetime_checkouts", "lifetime_renewals")}
    assert offered <= set(field.options)
    field.set_value("lifetime_checkouts").run()
    assert not at.exception and not at.error and not at.warning
    assert at.session_state["seg-rules"] == {"all": [{"field": "lifetime_checkouts", "op": ">=", "value": 10}]}
    assert at.metric[0].value == f"{int((df['checkouts'] >= 10).sum()):,}"
    next(s for s in at.selectbox if s.label == "Field").set_value("resident").run()
    assert at.metric[0].value == f"{int(df['resident'].sum()):,}"


def test_the_profile_and_the_access_export_show_the_usage_fields(db, staff):
    df = frame()
    load(db, staff["admin"])
    k = int(df.index[df["last"].notna() & (df["checkouts"] > 0)][0])
    with db.read() as s:
        patron_id = s.exec(select(Patron.id).where(Patron.ils_id == f"row-{k + 1}")).one()
    with db.write() as s:
        details = patrons.profile(s, actor=staff["manager"], patron_id=patron_id)["details"]
        export = rights.access_export(s, actor=staff["admin"], patron_id=patron_id)["patron"]
    row = df.loc[k]
    assert details["Lifetime checkouts (ILS)"] == row["checkouts"] and details["Lifetime renewals (ILS)"] == row["renewals"]
    assert details["Resident of the service area"] == ("yes" if row["resident"] else "no")
    assert details["Has an email address"] == ("yes" if row["has_email"] else "no")
    assert details["Last activity the ILS reports"] == details["Last activity"] == row["last"].date()
    assert (export["lifetime_checkouts"], export["resident"], export["has_email"]) == (row["checkouts"], bool(row["resident"]), bool(row["has_email"]))
    assert export["ils_last_activity_on"] == row["last"].date().isoformat()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"field": "lifetime_checkouts", "op": ">=", "value": -1}, "Condition 1, Lifetime checkouts (ILS total): enter a number between 0 and 1000000."),
        ({"field": "lifetime_renewals", "op": "between", "value": [5, 2_000_000]}, "Lifetime renewals (ILS total): enter a number between 0 and 1000000."),
        ({"field": "lifetime_checkouts", "op": ">=", "value": "10"}, "Condition 1, Lifetime checkouts (ILS total): must be a whole number, not '10'."),
        ({"field": "resident", "op": "is", "value": "yes"}, "Condition 1, Resident of the service area: must be true or false, not 'yes'."),
        ({"field": "lifetime_checkouts", "op": "in", "value": [1]}, "'in' is not an operator of lifetime_checkouts"),
    ],
)
def test_rules_on_the_new_fields_are_bounded_like_the_others(rule, message):
    with pytest.raises(ValueError) as caught:
        segments_language.validate({"all": [rule]})
    assert message in str(caught.value)
    assert tree.describe({"field": "lifetime_checkouts", "op": ">=", "value": 10}) == "Lifetime checkouts (ILS total) ≥ 10"
    assert tree.default_leaf("lifetime_renewals") == {"field": "lifetime_renewals", "op": ">=", "value": 10}


def test_the_cli_imports_the_usage_export_with_a_mapping_file_and_warns_on_a_resorted_one(db, staff, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", db.url)
    chosen = tmp_path / "usage.json"
    chosen.write_text(json.dumps(USAGE), encoding="utf-8")
    assert cli.main(["import", "patrons", str(FIXTURE), "--mapping", str(chosen)]) == 0
    df = frame()
    assert f"{len(df):,} new" in capsys.readouterr().out
    got = stored(db)
    assert groups(got["branch"]) == groups(df["Home Library Definition"]) and int(got["checkouts"].sum()) == int(df["checkouts"].sum())
    lines = FIXTURE.read_text(encoding="utf-8").splitlines(keepends=True)
    reversed_file = tmp_path / "reversed.csv"
    reversed_file.write_text(lines[0] + "".join(reversed(lines[1:])), encoding="utf-8")
    assert cli.main(["import", "patrons", str(reversed_file), "--mapping", str(chosen), "--dry-run"]) == 0
    assert "row-number ids matched the wrong patrons" in capsys.readouterr().out


def test_the_dashboard_of_a_usage_export_counts_its_last_active_months(db, staff):
    """A usage export carries no events, only each patron's last active month: the dashboard's Active and
    Lapsed at the export's last month equal pandas on the file (active = last active month within the 12
    months ending then), not "everyone lapsed"."""
    from crmcore import kpis
    from crmcore.kpis import figures as f
    from crmcore.kpis.summaries import month_index, month_of

    df = frame()
    load(db, staff["admin"])
    with db.write() as s:
        kpis.refresh_summaries(s, today=TODAY)
        options = kpis.filter_options(s, actor=staff["manager"])
    last = df["last"].max().date()
    assert options.last_data == last
    period = kpis.Filters(last, 12)
    window_start = pd.Timestamp(month_of(month_index(last) - 11))
    with db.read() as s:
        counts = f.lifecycle_counts(s, filters=period, month=last)
    active = int((df["last"] >= window_start).sum())
    assert 0 < f.active_patrons(counts) == active < len(df)
    assert f.active_patrons(counts) + f.lapsed_patrons(counts) == f.registered_patrons(counts) == len(df)
