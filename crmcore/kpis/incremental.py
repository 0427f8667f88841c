"""The dashboard summaries followed incrementally: when a few patrons change (a day's activity, an erasure, a
survey answer), what they counted for is taken out of the `dash_*` tables and what they count for now is put
in, so the tables end exactly as a full rebuild (crmcore.kpis.summaries) would leave them.

Every summary is a sum over patrons (a patron's lifecycle state per month, their flows, cohort and
registration; their activity per month and kind with them counted once), so the difference can be worked out
from the changed patrons alone. It holds only while the months summarised are the ones stored (`dash_window`):
a new month, or activity dated before the first month, changes every patron's rows, and then the summaries
are rebuilt in full, now (an import) or by the worker's next run (a patron's post must not wait for it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import numpy as np
from sqlalchemy import and_, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from crmcore.kpis import summaries
from crmcore.kpis.summaries import ACTIVITY_KEY, KEYS, Tally
from crmcore.models import DashActivity, Patron

# Above this share of all patrons, one full rebuild costs less than taking them out and putting them back.
MAX_SHARE = 0.2
CHUNK = 2000  # patrons per IN (...): well under both backends' parameter limits

Counts = dict[type, dict[tuple, tuple[int, ...]]]


def few_enough(session: Session, patrons: int) -> bool:
    """Whether `patrons` changed patrons are worth following one by one rather than by a full rebuild."""
    # The highest id stands for the number of patrons (ids are given in turn): one index seek, not a count.
    return patrons <= MAX_SHARE * (session.execute(select(func.max(Patron.id))).scalar() or 0)


@contextmanager
def patrons_changing(session: Session, patron_ids, *, rollups_from: date | None = None, rebuild_now: bool = True,
                     today: date | None = None, added: list[tuple] | None = None) -> Iterator[None]:
    """Around a change to these patrons' rows or monthly rollups (in the caller's transaction): afterwards the
    summary tables are as a full rebuild would leave them. `rollups_from`: a change to rollups of this month
    and later only, leaving the patrons' home branch, zone and type as they are (their activity counts before
    it are not read again). When the change cannot be followed for these patrons alone (the months to
    summarise moved, too many patrons), the summaries are rebuilt in full at the end, or, with `rebuild_now`
    False, marked for the worker's next full rebuild. `added`: the change only adds these counts to the rollups,
    (patron id, month, kind, count) rows, and changes no column the summaries read: what the patrons count for
    afterwards is then worked out with what they count for now, from one read of their rollups."""
    ids = sorted({int(i) for i in patron_ids})
    today = today or date.today()
    stored = summaries.stored_window(session)
    follow = bool(ids) and stored is not None and stored == summaries.window(session, today) and few_enough(session, len(ids))
    change = _Change(session, ids, stored, today, rollups_from, added) if follow else None  # what they count for now, taken out
    yield
    if not ids:
        return
    if change is not None and summaries.window(session, today) == stored:
        if change.added is None:
            change.count(session, weight=1)  # what they count for after the change, put in
        _apply(session, change.deltas())
    elif rebuild_now:
        summaries.refresh_summaries(session, today=today)
    else:
        summaries.forget_window(session)


def catch_up(db) -> str | None:
    """The worker's job: rebuild the summaries in full when they no longer cover the months to summarise (a new
    month began, or a change could not be followed incrementally)."""
    today = date.today()
    with db.read() as session:
        if summaries.stored_window(session) == summaries.window(session, today):
            return None
    with db.write() as session:
        summaries.refresh_summaries(session, today=today)
    return "dashboard summaries rebuilt"


class _Change:
    """The signed difference a change makes to the summaries: the patrons counted with weight -1 before it, +1 after."""

    def __init__(self, session: Session, ids: list[int], window: tuple[int, int], today: date, rollups_from: date | None,
                 added: list[tuple] | None = None):
        self.ids, self.window = ids, window
        self.rollups_from = rollups_from
        self.tally = Tally(*window, today)
        self.activity: dict[tuple, list[int]] = {}
        self.added = None if added is None else self._by_patron(added)
        self.count(session, weight=-1)

    def count(self, session: Session, *, weight: int) -> None:
        """Add what these patrons count for in each summary table, as the stored rollups and rows say now, `weight`
        times (and, with `added`, what they will count for, -`weight` times)."""
        for start in range(0, len(self.ids), CHUNK):
            chunk = self.ids[start : start + CHUNK]
            rows = summaries.patrons(session, chunk)
            active = self.tally.active_months(session, ids=chunk)
            # Counts are not in the rollups' key index: read only the months that may change.
            counts = self.tally.active_months(session, ids=chunk, counts=True, since=self.rollups_from)
            self.tally.add(rows, active, weight=weight)
            self._activity(rows, counts, weight)
            if self.added is not None:
                # Afterwards: the same rows, the rollups they have now and the counts added (a patron's month or
                # kind listed twice counts once, as a patron with rows at two branches does).
                new = [row for patron in chunk for row in self.added.get(patron, ())]
                self.tally.add(rows, [*active, *((r[0], r[1]) for r in new)], weight=-weight)
                self._activity(rows, [*counts, *new], -weight)

    def _by_patron(self, added: list[tuple]) -> dict[int, list[tuple]]:
        """The rows added, by patron: those in the months the summaries read (the window and its 12 look-back months)."""
        low, high = self.window[0] - 12, self.window[1]
        if self.rollups_from is not None:
            low = max(low, summaries.month_index(self.rollups_from))
        out: dict[int, list[tuple]] = {}
        for row in added:
            if low <= summaries.month_index(row[1]) <= high:
                out.setdefault(row[0], []).append(row)
        return out

    def _activity(self, rows: list, rollups: list, weight: int) -> None:
        """dash_activity's counts of these patrons (what the full rebuild groups in SQL, worked out from their rollups):
        per month × kind × home branch, zone and type, the events and the patrons with any."""
        if not rollups:
            return
        columns, first, span = self.tally.columns, self.window[0], self.tally.months + 12
        homes: dict[tuple, int] = {}
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        home = np.array([homes.setdefault((r[1] or 0, r[2] or 0, r[3] or ""), len(homes)) for r in rows], dtype=np.int64)
        kinds: dict[str, int] = {}
        n = len(rollups)
        who = np.searchsorted(ids, np.fromiter((r[0] for r in rollups), dtype=np.int64, count=n))
        column = np.fromiter((columns[r[1]] for r in rollups), dtype=np.int64, count=n)
        kind = np.fromiter((kinds.setdefault(r[2], len(kinds)) for r in rollups), dtype=np.int64, count=n)
        count = np.fromiter((r[3] for r in rollups), dtype=np.int64, count=n)
        inside = column >= 12  # not a look-back month, before the window
        key = ((home[who] * len(kinds) + kind) * span + column)[inside]
        unique, inverse = np.unique(key, return_inverse=True)
        events = np.rint(np.bincount(inverse.ravel(), weights=count[inside])).astype(np.int64)
        # Patrons with any: one per (key, patron), though a patron has a row per branch used.
        patrons = np.bincount(np.searchsorted(unique, np.unique(key * len(ids) + who[inside]) // len(ids)), minlength=len(unique))
        names, kind_names = {v: k for k, v in homes.items()}, {v: k for k, v in kinds.items()}
        for k, e, p in zip(unique.tolist(), events.tolist(), patrons.tolist()):
            rest, c = divmod(k, span)
            h, kd = divmod(rest, len(kinds))
            had = self.activity.setdefault((summaries.month_of(first + c - 12), kind_names[kd], *names[h]), [0, 0])
            had[0] += weight * e
            had[1] += weight * p

    def deltas(self) -> Counts:
        """Table → {key → the change to its counts}, for the keys that changed."""
        out: Counts = {table: {key: (n,) for key, n in counts.items() if n} for table, counts in self.tally.tables().items()}
        out[DashActivity] = {key: tuple(v) for key, v in self.activity.items() if any(v)}
        return out


def _apply(session: Session, deltas: Counts) -> None:
    """Add the differences to the stored rows (a new key becomes a row) and delete the rows left with no patrons."""
    insert = sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert
    for model, changed in deltas.items():
        if not changed:
            continue
        table = model.__table__
        names = ACTIVITY_KEY if model is DashActivity else KEYS[model]
        values = ("events", "patrons") if model is DashActivity else ("patrons",)
        rows = [dict(zip((*names, *values), (*key, *delta))) for key, delta in changed.items()]
        upsert = insert(table)
        upsert = upsert.on_conflict_do_update(index_elements=list(names), set_={v: table.c[v] + upsert.excluded[v] for v in values})
        session.execute(upsert, rows)
        emptied = [{f"k_{n}": v for n, v in zip(names, key)} for key, delta in changed.items() if delta[-1] < 0]
        if emptied:
            session.execute(delete(table).where(and_(*(table.c[n] == bindparam(f"k_{n}") for n in names)), table.c.patrons <= 0), emptied)
