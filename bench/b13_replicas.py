"""B13: two app replicas under simulated staff load.

Two uvicorn processes serving server.py on two loopback ports share the run's database (the URL the Context
gives: SQLite or PostgreSQL) and one signing key (CRM_SECRET_KEY). Twenty simulated staff sessions sign in
through the sign-in form (bench/stream_client.py: Streamlit's own websocket and protobuf messages), then for
60 s each opens a tab on one replica, views the dashboard, the segments page and the patron directory, runs a
patron search (widget states: by ILS id or by last name), pausing a moment between views as a person reading
does, and opens its next tab on the other replica with the same cookie. A view's time runs from the rerun
request to the script's finished message; the figures are p50 and p95 per page. Untimed first: one warm-up
round per replica (imports, caches). Every view must finish without an error on the page, signed in.

B13_SECONDS (60), B13_SESSIONS (20), B13_THINK (seconds between views, 1.0) change the load. B13_PROFILE=FILE records
the first replica with py-spy during the timed views (bench/b13_views.py: FILE's suffix chooses the format).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import statistics
import time
from collections import defaultdict
from contextlib import ExitStack

from sqlalchemy import func
from sqlmodel import select

from bench.common import BENCH_USER, Context, Row, _ensure_bench_user, say
from bench.stream_client import Run, Tab

WHAT = "two replicas, simulated staff"
TARGET = "p95 ≤ 2 s"
VIEWS = {"": "dashboard", "segments": "segments", "patrons": "patron directory"}  # url path -> what the row says
SEARCH = "patron search"
TITLES = {"": "Dashboard", "segments": "Segments", "patrons": "Patrons"}


class Failed(Exception):
    """A view that showed an error or the sign-in form: a fast wrong page is a failure."""


def _check(run: Run, page: str) -> None:
    if run.errors:
        raise Failed(f"{VIEWS.get(page, page)}: {run.errors[0][:200]}")
    if not run.shows("Signed in as") or not run.shows(TITLES[page]):
        raise Failed(f"{VIEWS.get(page, page)}: not the signed-in page ({run.texts[:3]})")


def _password(db) -> str:
    """A fresh password for the bench manager, known to this run only."""
    from crmcore.admin.auth import hash_password
    from crmcore.models import StaffUser

    _ensure_bench_user(db)
    password = "bench " + secrets.token_urlsafe(12)
    with db.write() as session:
        user = session.exec(select(StaffUser).where(StaffUser.username == BENCH_USER)).one()
        user.password_hash, user.failed_attempts, user.locked_until = hash_password(password), 0, None
        session.add(user)
    return password


def _search_terms(db, count: int = 200) -> list[tuple[str, str]]:
    """What the staff search for: ILS ids and last names of patrons spread over the library, alternately."""
    from crmcore.models import Patron

    rng = random.Random(13)
    with db.read() as session:
        top = session.exec(select(func.max(Patron.id))).one() or 1
        ids = [rng.randint(1, top) for _ in range(count)]
        found = session.exec(select(Patron.ils_id, Patron.last_name).where(Patron.id.in_(ids))).all()
    terms = []
    for i, (ils_id, last_name) in enumerate(found):
        terms.append(("Name", last_name) if i % 2 and last_name else ("ILS id", ils_id))
    if not terms:
        raise RuntimeError("the data set has no patrons to search for")
    return terms


async def _round(tab: Tab, term: tuple[str, str], think: float, record) -> None:
    """One tab: the three pages and a search, with a pause between views."""
    form = None
    for page in VIEWS:
        run = await tab.run(page)
        _check(run, page)
        record(page, run)
        form = run
        await asyncio.sleep(think)
    by, query = term
    run = await tab.run("patrons", widgets=[
        (form.widget("selectbox", "Search by"), "string_value", by),
        (form.widget("text_input", "Search for"), "string_value", query),
        (form.widget("button", "Search"), "trigger_value", True),
    ])
    _check(run, "patrons")
    if not (run.shows("Patrons 1–") or run.shows("No patron matches")):
        raise Failed(f"{SEARCH}: no result shown for {by} {query!r}")
    record(SEARCH, run)
    await asyncio.sleep(think)


def _profiler(base: str, stack: ExitStack):
    """With B13_PROFILE set: a function that starts py-spy on the replica at `base` until the run ends."""
    path = os.environ.get("B13_PROFILE")
    if not path:
        return lambda: None
    from bench.b13_views import py_spy

    return lambda: stack.enter_context(py_spy(int(base.rsplit(":", 1)[1]), path))


async def _load(bases: list[str], password: str, terms: list[tuple[str, str]], *, sessions: int, seconds: float, think: float,
                on_start=lambda: None):
    """Sign the staff in, warm the replicas up, then run the sessions for `seconds`: the timed views per page."""
    cookies, pages = [], {}
    for n in range(sessions):  # each signs in on the replica it starts on
        async with Tab(bases[n % 2]) as tab:
            cookies.append(await tab.sign_in(BENCH_USER, password))
    for base in bases:  # untimed: the first runs import plotly, fill the caches
        async with Tab(base, cookies=cookies[0]) as tab:
            await _round(tab, terms[0], 0, lambda page, run: None)
            pages = tab.pages
    times: dict[str, list[float]] = defaultdict(list)
    served: dict[str, int] = defaultdict(int)
    on_start()
    until = time.monotonic() + seconds

    async def staff(n: int) -> None:
        rng = random.Random(n)
        await asyncio.sleep(rng.uniform(0, max(think, 0.1) * 3))  # people do not all click at the same instant
        turn = n
        while time.monotonic() < until:
            base = bases[turn % 2]  # the next tab on the other replica
            turn += 1

            def record(page: str, run: Run) -> None:
                times[page].append(run.seconds)
                served[base] += 1

            async with Tab(base, cookies=cookies[n], pages=pages) as tab:
                await _round(tab, terms[(n * 7 + turn) % len(terms)], think * rng.uniform(0.5, 1.5), record)

    await asyncio.gather(*(staff(n) for n in range(sessions)))
    return times, served


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run(ctx: Context) -> list[Row]:
    from tests.campaign_fixtures import free_port
    from tests.web_server import serving

    seconds = float(os.environ.get("B13_SECONDS", 60))
    sessions = int(os.environ.get("B13_SESSIONS", 20))
    think = float(os.environ.get("B13_THINK", 1.0))
    db = ctx.db()
    password, terms = _password(db), _search_terms(db)
    key = {"CRM_SECRET_KEY": secrets.token_urlsafe(32)}  # one key, as replicas on two machines would be given
    say(f"  two replicas, {sessions} staff sessions for {seconds:.0f} s, {think:.1f} s between views …")
    with ExitStack() as stack:
        bases = [stack.enter_context(serving(db, port=free_port(), env=key)) for _ in range(2)]
        load_before = os.getloadavg()[0]
        try:
            times, served = asyncio.run(_load(bases, password, terms, sessions=sessions, seconds=seconds, think=think,
                                              on_start=_profiler(bases[0], stack)))
        except Failed as exc:
            return [Row("B13", WHAT, target=TARGET, met=False, agree=False, note=str(exc))]
        load_after = os.getloadavg()[0]
    rows = []
    every = [t for values in times.values() for t in values]
    for page, what in [*VIEWS.items(), (SEARCH, SEARCH)]:
        values = times[page]
        p50, p95 = statistics.median(values), _percentile(values, 95)
        rows.append(Row("B13", f"{WHAT}: {what} (p95)", p95, None, TARGET, met=p95 <= 2.0,
                        note=f"p50 {p50:.2f} s, {len(values)} views",
                        extra={"p50_s": p50, "p95_s": p95, "max_s": max(values), "views": len(values)}))
    p95 = _percentile(every, 95)
    rows.append(Row("B13", f"{WHAT}: every view (p95)", p95, None, TARGET, met=p95 <= 2.0,
                    note=f"p50 {statistics.median(every):.2f} s, {len(every)} views, {len(every) / seconds:.1f}/s; "
                         f"load average {load_before:.1f} → {load_after:.1f}",
                    extra={"sessions": sessions, "seconds": seconds, "think_s": think, "views_per_replica": list(served.values()),
                           "load_before": load_before, "load_after": load_after}))
    return rows
