"""The catalogue feed: new materials (recent acquisitions) for the recommendations block. No patron data.

A row is one title: its catalogue link (http or https, the key a re-import updates by), title, author,
material type and categories from the item-category vocabulary, branch, cover picture and the day it was
added. After a feed is loaded, the earlier feeds' items added longer ago than the window (setting
"catalogue_window_days") are removed; the library's picks among the items that stay are kept as picks.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.imports.batch import Batch, BatchResult, Rejected, RowError
from crmcore.imports.codes import Codes
from crmcore.library import categories
from crmcore.models import Branch, CatalogueItem
from crmcore.outreach import cleaning

ITEM = CatalogueItem.__table__
_SEPARATORS = re.compile(r"[;|,]")
STORED = ("title", "author", "material_type", "categories", "branch_id", "cover_url", "added_on")


def web_address(field: str, text: str) -> str:
    """`text` if it is an http or https address (outreach's website check); RowError naming `field` otherwise."""
    try:
        return cleaning.website(text, field=field) or ""
    except ValueError as exc:
        raise RowError(field, str(exc).partition(": ")[2].rstrip(".")) from None


class CatalogueImport:
    kind = "catalogue"

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.now = now
        self.today = now.date()
        self.branches = Codes(Branch.__table__)
        self.terms: dict[str, tuple[str, str]] | None = None
        self.rows_loaded = 0

    def prepare(self, batch: Batch) -> list[tuple[int, dict[str, Any]]]:
        return batch.each_row(self._row)

    def _row(self, values: dict[str, Any]) -> dict[str, Any]:
        values["link"] = web_address("link", values["link"])
        if values.get("cover_url"):
            values["cover_url"] = web_address("cover_url", values["cover_url"])
        if values.get("added_on") is None:
            values["added_on"] = self.today
        elif values["added_on"] > self.today:
            raise RowError("added_on", f"{values['added_on']} is in the future")
        return values

    def _terms(self, session: Session, line: int, v: dict[str, Any], result: BatchResult) -> bool:
        """Categories and material type spelt as the vocabulary's terms; False (the row rejected) when one is not a term."""
        if self.terms is None:
            self.terms = categories.vocabulary(session)
        names = []
        for text in (t.strip() for t in _SEPARATORS.split(v.get("categories") or "")):
            if not text:
                continue
            term = self.terms.get(text.casefold())
            if term is None:
                result.rejected.append(Rejected(line, "categories", categories.not_a_term(text)))
                return False
            names.append(term[0])
        if not names:
            result.rejected.append(Rejected(line, "categories", "is missing (at least one item category, e.g. Mystery)"))
            return False
        v["categories"] = list(dict.fromkeys(names))
        if (text := v.get("material_type")) is not None:
            term = self.terms.get(text.casefold())
            if term is None or term[1] != "material":
                result.rejected.append(Rejected(line, "material_type", categories.not_a_term(text, group="material")))
                return False
            v["material_type"] = term[0]
        return True

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        result = BatchResult()
        rows = [(line, v) for line, v in rows if self._terms(session, line, v, result)]
        self.branches.resolve(session, (v.get("branch") for _l, v in rows), dry_run=dry_run)
        conn = session.connection()
        links = [v["link"] for _l, v in rows]
        stored = {r.link: r for r in conn.execute(select(ITEM).where(ITEM.c.link.in_(links)))} if links else {}
        for _line, v in rows:
            wanted = {k: v.get(k) for k in STORED if k != "branch_id"} | {"branch_id": self.branches.id(v.get("branch"))}
            before = stored.get(v["link"])
            if before is None:
                result.new += 1
                if not dry_run:
                    conn.execute(ITEM.insert().values(link=v["link"], is_pick=False, imported_at=self.now, **wanted))
            else:
                same = all(getattr(before, k) == value for k, value in wanted.items())
                result.unchanged += same
                result.updated += not same
                if not dry_run:
                    conn.execute(update(ITEM).where(ITEM.c.link == v["link"]).values(imported_at=self.now, **wanted))
            stored[v["link"]] = before or True  # a link twice in one file: the later row updates the first
        self.rows_loaded += len(rows)
        return result

    def finish(self, db, *, dry_run: bool) -> list[str]:
        """Remove the earlier feeds' items added before the window (not in a dry run)."""
        with db.read() if dry_run else db.write() as session:
            days = int(settings.get(session, "catalogue_window_days"))
            old = (ITEM.c.imported_at < self.now) & (ITEM.c.added_on < self.today - timedelta(days=days))
            if dry_run:
                gone = len(session.connection().execute(select(ITEM.c.id).where(old)).all())
            else:
                gone = session.connection().execute(delete(ITEM).where(old)).rowcount
        notes = [f"{gone:,} items of earlier feeds added more than {days} days ago {'would be' if dry_run else 'were'} removed."]
        if self.branches.created:
            notes.append(f"{'Would create' if dry_run else 'Created'} branches: {', '.join(self.branches.created[:20])}.")
        return notes
