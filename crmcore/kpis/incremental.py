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

from sqlalchemy import and_, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from crmcore.kpis import summaries
from crmcore.kpis.summaries import ACTIVITY_KEY, KEYS, Tally
from crmcore.models import ActivityMonthly, DashActivity, Patron

# Above this share of all patrons, one full rebuild costs less than taking them out and putting them back.
MAX_SHARE = 0.2
CHUNK = 2000  # patrons per IN (...): well under both backends' parameter limits

Counts = dict[type, dict[tuple, tuple[int, ...]]]


def few_enough(session: Session, patrons: int) -> bool:
    """Whether `patrons` changed patrons are worth following one by one rather than by a full rebuild."""
    return patrons <= MAX_SHARE * session.execute(select(func.count()).select_from(Patron)).scalar_one()


@contextmanager
def patrons_changing(session: Session, patron_ids, *, rebuild_now: bool = True, today: date | None = None) -> Iterator[None]:
    """Around a change to these patrons' rows or monthly rollups (in the caller's transaction): afterwards the
    summary tables are as a full rebuild would leave them. When that cannot be done for these patrons alone
    (the months to summarise moved, too many patrons), the summaries are rebuilt in full at the end, or, with
    `rebuild_now` False, marked for the worker's next full rebuild."""
    ids = sorted({int(i) for i in patron_ids})
    today = today or date.today()
    stored = summaries.stored_window(session)
    follow = bool(ids) and stored is not None and stored == summaries.window(session, today) and few_enough(session, len(ids))
    before = _counts(session, ids, stored, today) if follow else None
    yield
    if not ids:
        return
    if follow and summaries.window(session, today) == stored:
        _apply(session, _difference(_counts(session, ids, stored, today), before))
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


def _counts(session: Session, ids: list[int], window: tuple[int, int], today: date) -> Counts:
    """What these patrons count for in each summary table (key → counts), as the stored rollups and rows say now."""
    first, last = window
    tally = Tally(first, last, today)
    activity: dict[tuple, tuple[int, int]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        if rows := summaries.patrons(session, chunk):
            tally.add(rows, tally.active_months(session, ActivityMonthly.patron_id.in_(chunk)))
        for *key, events, patrons in session.execute(summaries.activity_grouped(first, last, ActivityMonthly.patron_id.in_(chunk))):
            key = (summaries._day(key[0]), *key[1:])
            had = activity.get(key, (0, 0))
            activity[key] = (had[0] + int(events), had[1] + patrons)
    out: Counts = {table: {key: (n,) for key, n in counts.items()} for table, counts in tally.tables().items()}
    out[DashActivity] = activity
    return out


def _difference(after: Counts, before: Counts) -> Counts:
    """after − before, key by key, without the keys that did not change."""
    out: Counts = {}
    for table in after:
        new, old = after[table], before[table]
        changed = {}
        for key in new.keys() | old.keys():
            a, b = new.get(key), old.get(key)
            delta = tuple(x - y for x, y in zip(a or (0,) * len(b), b or (0,) * len(a)))
            if any(delta):
                changed[key] = delta
        out[table] = changed
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
