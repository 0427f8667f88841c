"""Public Libraries Survey imports: the IMLS administrative-entity file of a fiscal year, one row per library system.

Rows are upserted on (fiscal year, FSCS key), so several years sit side by side and re-importing a year
changes only what changed. The survey's negative codes (-1, -3, -4, -9: missing, not applicable) are the
preset's missing values and are stored as unknown. The fiscal year comes from a mapped column, else the
mapping's `fiscal_year`, else the file name as published (pls_fy2022_ae…, PLS_FY22_AE…, pupld22a…).
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlmodel import Session

from crmcore.imports.batch import Batch, BatchResult, RowError
from crmcore.models import LibrarySurveyRow

SURVEY = LibrarySurveyRow.__table__
FIGURES = ("name", "state", "locale", "population", "visits", "circulation", "e_circulation", "registered", "programs", "attendance", "expenditure", "branches")
FIRST_YEAR = 1988  # the first survey year (FY 1988)
_NAMED_YEAR = re.compile(r"(?:fy|pud|pupld)[ _-]?(\d{4}|\d{2})(?!\d)", re.IGNORECASE)


def year_from_name(file_name: str) -> int | None:
    """The fiscal year a published file's name gives (pls_fy2022_ae_pud22i.csv → 2022), or None."""
    found = _NAMED_YEAR.search(file_name or "")
    if not found:
        return None
    year = int(found.group(1))
    return year + 2000 if year < 100 else year


def check_year(year: Any, where: str) -> int:
    """A fiscal year between the first survey and next year, else ValueError saying where."""
    last = date.today().year + 1
    try:
        number = int(str(year).strip())
    except ValueError:
        raise ValueError(f"{where}: the fiscal year must be a number such as 2022, not {year!r}.") from None
    if not FIRST_YEAR <= number <= last:
        raise ValueError(f"{where}: the fiscal year must be between {FIRST_YEAR} and {last}, not {number}.")
    return number


class LibrarySurveyImport:
    kind = "library_survey"

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.figures = [f for f in FIGURES if f in mapping["columns"]]
        self.by_column = "fiscal_year" in mapping["columns"]
        self.given = mapping.get("fiscal_year") or year_from_name(file_name)
        self.file_name = file_name
        self.now = now

    def _year(self) -> int | None:
        if self.by_column:
            return None
        if not self.given:
            raise ValueError(f"{self.file_name}: say which fiscal year the survey file is for (its name does not say, as in pls_fy2022_ae.csv).")
        return check_year(self.given, self.file_name)

    def prepare(self, batch: Batch) -> list[tuple[int, dict[str, Any]]]:
        given = self._year()  # raised here, inside the run, so the run is recorded as failed with the reason

        def row(values: dict[str, Any]) -> dict[str, Any]:
            year = values.get("fiscal_year") if self.by_column else given
            if year is None:
                raise RowError("fiscal_year", "the fiscal year is empty")
            try:
                values["fiscal_year"] = check_year(year, "fiscal year")
            except ValueError as exc:
                raise RowError("fiscal_year", str(exc).split(": ", 1)[-1]) from None
            values["fscs_key"] = values["fscs_key"].upper()
            if values.get("state"):
                values["state"] = values["state"].upper()
            return values

        return batch.each_row(row)

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        result = BatchResult()
        conn = session.connection()
        keys = [(v["fiscal_year"], v["fscs_key"]) for _l, v in rows]
        existing = {(r.fiscal_year, r.fscs_key): r for r in conn.execute(select(SURVEY).where(tuple_(SURVEY.c.fiscal_year, SURVEY.c.fscs_key).in_(keys)))} if keys else {}
        for _line, v in rows:
            key = (v["fiscal_year"], v["fscs_key"])
            wanted = {f: v.get(f) for f in self.figures}
            wanted["name"] = wanted.get("name") or v["fscs_key"]
            before = existing.get(key)
            if before is None:
                result.new += 1
                if not dry_run:
                    conn.execute(SURVEY.insert().values(fiscal_year=key[0], fscs_key=key[1], imported_at=self.now, **wanted))
            elif all(getattr(before, k) == value for k, value in wanted.items()):
                result.unchanged += 1
                continue
            else:
                result.updated += 1
                if not dry_run:
                    conn.execute(update(SURVEY).where(SURVEY.c.fiscal_year == key[0], SURVEY.c.fscs_key == key[1]).values(imported_at=self.now, **wanted))
            existing[key] = SimpleNamespace(**wanted)  # a later row with the same key and figures is unchanged
        return result

    def finish(self, db, *, dry_run: bool) -> list[str]:
        return []
