"""The schema Liaison's migrations create for a version, and how a database differs from it.

A restore compares the file it is given with this reference before anything runs on it: a trigger,
view or other object the migrations never create is a way to run an attacker's SQL in the live
database, and a missing table takes the app down. The reference is made by migrating an empty
database to the same version with this code, so it is exactly what a genuine backup holds.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from crmcore.db import migrate

# Tables SQLite makes itself (AUTOINCREMENT counters, ANALYZE statistics): present or not in a genuine file.
SQLITE_INTERNAL = {"sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4"}


def deferrable_indexes() -> set[str]:
    """Indexes a killed bulk load may leave missing (rebuilt by `bulk.restore_indexes`): tolerated when absent."""
    from sqlmodel import SQLModel

    from crmcore import models  # noqa: F401  (the tables of the metadata)

    return {index.name for table in SQLModel.metadata.sorted_tables for index in table.indexes if index.name}


# --- SQLite -------------------------------------------------------------------------------------


def _normal_sql(sql: str | None) -> str:
    """A CREATE statement with quoting, case and spacing made uniform (they vary with the tool that wrote it)."""
    return re.sub(r"\s+", " ", re.sub(r"[\"`\[\]]", "", sql or "")).strip().lower()


def sqlite_schema(con: sqlite3.Connection) -> dict[str, object]:
    """What a SQLite database holds, object by object: {"table x": {...}, "index y": {...}, "trigger z": ...}."""
    found: dict[str, object] = {}
    rows = con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    for kind, name, table, sql in rows:
        if kind == "table" and name in SQLITE_INTERNAL:
            continue
        if kind == "table":
            columns = [tuple(r[1:]) for r in con.execute("SELECT * FROM pragma_table_xinfo(?)", (name,))]
            keys = sorted(tuple(r[2:]) for r in con.execute("SELECT * FROM pragma_foreign_key_list(?)", (name,)))
            found[f"table {name}"] = {"columns": columns, "foreign keys": keys, "sql": _normal_sql(sql)}
        elif kind == "index":
            info = con.execute("SELECT \"unique\", partial FROM pragma_index_list(?) WHERE name = ?", (table, name)).fetchone()
            columns = [r[2] for r in con.execute("SELECT * FROM pragma_index_info(?)", (name,))]
            found[f"index {name}"] = {"table": table, "columns": columns, "unique": info and info[0], "partial": info and info[1], "sql": _normal_sql(sql)}
        else:  # a trigger or a view: Liaison's migrations create none, but if one did it would be in the reference
            found[f"{kind} {name}"] = {"table": table, "sql": _normal_sql(sql)}
    return found


@functools.lru_cache(maxsize=8)
def sqlite_reference(revision: str) -> dict[str, object]:
    """The schema of an empty SQLite database migrated to `revision` by this code."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reference.db"
        migrate(f"sqlite:///{path}", revision=revision)
        con = sqlite3.connect(str(path))
        try:
            return sqlite_schema(con)
        finally:
            con.close()


def differences(found: dict[str, object], reference: dict[str, object], *, tolerate_missing: set[str] = frozenset()) -> list[str]:
    """How `found` differs from `reference`, for a person: 'trigger x (Liaison creates no such object)', …"""
    problems = []
    for key in sorted(found.keys() - reference.keys()):
        problems.append(f"{key} (Liaison creates no such object)")
    missing_tables = {f"table {want['table']}" for want in reference.values() if isinstance(want, dict) and "table" in want} - found.keys()
    for key in sorted(reference.keys() - found.keys(), key=lambda k: (not k.startswith("table "), k)):
        kind, _, name = key.partition(" ")
        within_missing_table = isinstance(reference[key], dict) and f"table {reference[key].get('table')}" in missing_tables
        if not (kind == "index" and name in tolerate_missing) and not within_missing_table:
            problems.append(f"{key} is missing")
    for key in sorted(found.keys() & reference.keys()):
        have, want = found[key], reference[key]
        if have == want:
            continue
        if isinstance(have, dict) and isinstance(want, dict) and "columns" in want and have.get("columns") != want["columns"]:
            names_have = [c[0] for c in have["columns"]]
            names_want = [c[0] for c in want["columns"]]
            extra, missing = [n for n in names_have if n not in names_want], [n for n in names_want if n not in names_have]
            detail = "; ".join(
                part
                for part in (
                    f"extra column(s) {', '.join(extra)}" if extra else "",
                    f"missing column(s) {', '.join(missing)}" if missing else "",
                )
                if part
            )
            problems.append(f"{key} has other columns than Liaison creates ({detail or 'their types or defaults differ'})")
        else:
            problems.append(f"{key} is defined differently from what Liaison creates")
    return problems


# --- PostgreSQL ---------------------------------------------------------------------------------

# What the catalog holds in one schema, object by object (tables, columns, indexes, constraints, and
# every kind of object Liaison never creates: triggers, views, functions, rules, policies, sequences
# not owned by a column are reported by their kind).
_PG_QUERIES = {
    "table": "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
    "column": "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = :s",
    "index": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = :s",
    "constraint": "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = :s",
    "trigger": "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND NOT t.tgisinternal",
    "function": "SELECT p.proname, p.prokind FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :s",
    "rule": "SELECT rulename, tablename FROM pg_rules WHERE schemaname = :s",
    "policy": "SELECT policyname, tablename FROM pg_policies WHERE schemaname = :s",
    "type": "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = :s AND t.typtype NOT IN ('c', 'b') AND t.typrelid = 0",
}
_KIND = {"r": "table", "p": "table", "v": "view", "m": "materialized view", "f": "foreign table"}


def pg_schema(conn, schema: str) -> dict[str, object]:
    """What schema `schema` of a PostgreSQL database holds, keyed like `sqlite_schema`."""
    found: dict[str, object] = {}
    rows = {what: conn.execute(text(sql), {"s": schema}).all() for what, sql in _PG_QUERIES.items()}
    for name, kind in rows["table"]:
        # A default naming its sequence names it with the schema unless that schema is first on the search path.
        columns = sorted((*r[1:4], r[4].replace(f"{schema}.", "")) for r in rows["column"] if r[0] == name)
        found[f"{_KIND[kind]} {name}"] = {"columns": columns}
    for table, name, definition in rows["index"]:
        found[f"index {name}"] = {"table": table, "sql": definition.replace(f"{schema}.", "")}
    for name, kind, definition in rows["constraint"]:
        found[f"constraint {name}"] = {"kind": kind, "sql": definition.replace(f"{schema}.", "")}
    for name, table in rows["trigger"]:
        found[f"trigger {name}"] = {"table": table}
    for name, kind in rows["function"]:
        found[f"function {name}"] = {"kind": kind}
    for name, table in rows["rule"]:
        found[f"rule {name}"] = {"table": table}
    for name, table in rows["policy"]:
        found[f"policy {name}"] = {"table": table}
    for (name,) in rows["type"]:
        found[f"type {name}"] = {}
    return found


@contextmanager
def pg_scratch(url: str, revision: str) -> Iterator[str]:
    """A scratch schema of the database at `url` migrated by this code to `revision` (its name), dropped
    afterwards: the PostgreSQL reference, made without any right to create databases."""
    scratch = f"liaison_reference_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{scratch}"')
        try:
            separator = "&" if "?" in url else "?"
            migrate(f"{url}{separator}options=-csearch_path%3D{scratch}", revision=revision)
            yield scratch
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{scratch}" CASCADE')
    finally:
        admin.dispose()


@functools.lru_cache(maxsize=8)
def pg_reference(url: str, revision: str) -> dict[str, object]:
    """The schema PostgreSQL gets from this code's migrations at `revision`, keyed like `pg_schema`."""
    with pg_scratch(url, revision) as scratch:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return pg_schema(conn, scratch)
        finally:
            engine.dispose()
