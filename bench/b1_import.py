"""B1: a Koha-style patrons CSV through crmcore's importer vs `sqlite-utils insert --csv` of the same file
(on PostgreSQL: `psql \\copy` of the same file into a bare table of text columns, the floor).

Both sides run as the command an operator would type, into a fresh database each repetition, so both
pay for starting Python. The CSV is written once per size from the demo library and cached.
"""

from __future__ import annotations

import csv
import sqlite3
import sys
from pathlib import Path

from sqlalchemy import text

from bench import postgres
from bench.common import DATA_DIR, Context, Row, backend, check_agree, fresh_database, median_time, run_checked
from crmcore.db import Database

WHAT = "import patrons (Koha CSV)"
TARGET = "ratio ≤ 2.0"
POSTGRES_TARGET = "≥ 30,000 rows a second"
POSTGRES_RATE = 30_000
# The header of Koha's patron import file (tools/import_borrowers), every column in its order.
KOHA_HEADER = (
    "cardnumber,surname,firstname,middle_name,title,othernames,initials,pronouns,streetnumber,streettype,"
    "address,address2,city,state,zipcode,country,email,phone,mobile,fax,emailpro,phonepro,B_streetnumber,"
    "B_streettype,B_address,B_address2,B_city,B_state,B_zipcode,B_country,B_email,B_phone,dateofbirth,"
    "branchcode,categorycode,dateenrolled,dateexpiry,password_expiration_date,date_renewed,gonenoaddress,"
    "lost,debarred,debarredcomment,contactname,contactfirstname,contacttitle,borrowernotes,relationship,"
    "sex,password,secret,auth_method,flags,userid,opacnote,contactnote,sort1,sort2,altcontactfirstname,"
    "altcontactsurname,altcontactaddress1,altcontactaddress2,altcontactaddress3,altcontactstate,"
    "altcontactzipcode,altcontactcountry,altcontactphone,smsalertnumber,sms_provider_id,privacy,"
    "privacy_guarantor_fines,privacy_guarantor_checkouts,checkprevcheckout,updated_on,lastseen,lang,"
    "login_attempts,overdrive_auth_token,anonymized,autorenew_checkouts,primary_contact_method,"
    "patron_attributes"
).split(",")

# Koha column -> SQL over the demo library that gives its value.
COLUMNS = {
    "cardnumber": "p.ils_id",
    "surname": "p.last_name",
    "firstname": "p.first_name",
    "email": "p.email",
    "phone": "p.phone",
    "dateofbirth": "CASE WHEN p.birth_year IS NULL THEN NULL ELSE p.birth_year || '-01-01' END",
    "zipcode": "z.code",
    "branchcode": "b.code",
    "categorycode": "p.patron_type",
    "dateenrolled": "p.registered_on",
    "dateexpiry": "p.expires_on",
    "primary_contact_method": "CASE WHEN p.email IS NULL THEN NULL ELSE 'email' END",
}


def koha_csv(ctx: Context) -> Path:
    """The demo library's patrons as a Koha borrowers export (every Koha column, the known ones filled)."""
    path = DATA_DIR / f"koha-patrons-{ctx.size}.csv"
    if path.exists():
        return path
    db = ctx.db()
    names = KOHA_HEADER
    select = ", ".join(f"{sql} AS {name}" for name, sql in COLUMNS.items())
    query = text(f"SELECT {select} FROM patron p LEFT JOIN zone z ON z.id = p.zone_id LEFT JOIN branch b ON b.id = p.branch_id ORDER BY p.id")
    partial = path.with_suffix(".partial")
    with db.engine.connect() as conn, partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for row in conn.execute(query).mappings():
            writer.writerow(["" if row.get(n) is None else row[n] for n in names])
    partial.rename(path)
    return path


def product_command(csv_path: Path) -> list[str]:
    return [sys.executable, "-m", "crmcore", "import", "patrons", str(csv_path), "--mapping", "Koha borrowers"]


def baseline_command(csv_path: Path, target: Path) -> list[str]:
    return [sys.executable, "-m", "sqlite_utils", "insert", str(target), "patrons", str(csv_path), "--csv"]


def product_answer(db: Database) -> dict:
    with db.read() as session:
        rows, ids, emails = session.execute(text("SELECT count(*), count(DISTINCT ils_id), count(email) FROM patron")).one()
    return {"rows": rows, "distinct card numbers": ids, "emails": emails}


def psql_copy_command(csv_path: Path, name: str) -> list[str]:
    """The PostgreSQL floor: psql's client-side COPY of the file into the bare table `patrons` of database `name`."""
    copy = f"\\copy patrons FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"
    return ["psql", postgres.libpq_url(name), "-v", "ON_ERROR_STOP=1", "-q", "-c", copy]


def _bare_table(name: str) -> None:
    """An empty database `name` with a table `patrons` of one text column per Koha column."""
    postgres.create(name)
    db = Database(postgres.url_for(name))
    with db.write() as session:
        session.execute(text(f"CREATE TABLE patrons ({', '.join(f'{c} text' for c in KOHA_HEADER)})"))  # constant names
    db.dispose()


def psql_answer(name: str) -> dict:
    db = Database(postgres.url_for(name))
    with db.read() as session:
        rows, ids, emails = session.execute(text("SELECT count(*), count(DISTINCT cardnumber), count(NULLIF(email, '')) FROM patrons")).one()
    db.dispose()
    return {"rows": rows, "distinct card numbers": ids, "emails": emails}


def baseline_answer(path: Path) -> dict:
    with sqlite3.connect(path) as conn:
        rows, ids, emails = conn.execute("SELECT count(*), count(DISTINCT cardnumber), count(NULLIF(email, '')) FROM patrons").fetchone()
    return {"rows": rows, "distinct card numbers": ids, "emails": emails}


def run(ctx: Context) -> list[Row]:
    csv_path = koha_csv(ctx)
    state: dict = {}

    def fresh_product():
        state["db"] = fresh_database("b1-product.db")
        state["db"].dispose()

    def product():
        run_checked(product_command(csv_path), env={"DATABASE_URL": state["db"].url})

    on_postgres = backend() == "postgres"
    baseline_path = DATA_DIR / "scratch" / "b1-baseline.db"
    baseline_name = postgres.scratch_name("b1-baseline.db")

    def fresh_baseline():
        if on_postgres:
            _bare_table(baseline_name)
            return
        for stale in baseline_path.parent.glob(baseline_path.name + "*"):
            stale.unlink()

    def baseline():
        run_checked(psql_copy_command(csv_path, baseline_name) if on_postgres else baseline_command(csv_path, baseline_path))

    product_s, _ = median_time(product, reps=ctx.reps, setup=fresh_product)
    baseline_s, _ = median_time(baseline, reps=ctx.reps, setup=fresh_baseline)
    answer = product_answer(state["db"])
    check_agree("B1 imported patrons", answer, psql_answer(baseline_name) if on_postgres else baseline_answer(baseline_path))
    rows_per_s = round(answer["rows"] / product_s)
    if on_postgres:  # the floor is psql's COPY into a bare table: the target is a rate, the ratio is reported
        row = Row("B1", WHAT + " vs psql \\copy", product_s, baseline_s, POSTGRES_TARGET, met=rows_per_s >= POSTGRES_RATE)
        row.note = f"{rows_per_s:,} rows a second" + ("" if row.met else f", {POSTGRES_RATE / rows_per_s:.1f}× short")
    else:
        row = Row("B1", WHAT, product_s, baseline_s, TARGET, met=product_s / baseline_s <= 2.0)
        if not row.met:
            row.note = f"{row.ratio / 2.0:.1f}× over"
    row.extra["rows_per_s"] = rows_per_s
    return [row]
