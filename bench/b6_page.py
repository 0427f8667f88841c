"""B6: the dashboard page rendered by AppTest (the whole script, Plotly figures included), caches cleared."""

from __future__ import annotations

import os

import streamlit as st

from bench.common import ROOT, Context, Row, median_time

WHAT = "dashboard page (AppTest)"
TARGET = "≤ 2 s"


def render(db, user_id: int):
    """One run of the app on the dashboard page, signed in as the bench manager; fails on any error shown."""
    from streamlit.testing.v1 import AppTest

    from crmcore.admin import sessions
    from crmcore.admin.auth import actor_for
    from crmcore.models import StaffUser

    st.cache_data.clear()  # caches off: every run computes its figures and builds its charts
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    with db.write() as session:  # signed in as the app's sign-in form leaves a tab (ui.SESSION)
        at.session_state["staff_session"] = sessions.start(session, actor=actor_for(session.get(StaffUser, user_id))).session_id
    at.switch_page("pages/dashboard.py")
    at.run()
    if at.exception or at.error:
        raise RuntimeError(f"the dashboard page failed: {[e.value for e in (*at.exception, *at.error)]}")
    if not at.title or at.title[0].value != "Dashboard":
        raise RuntimeError(f"not the dashboard page: {[t.value for t in at.title]}")
    return at


def run(ctx: Context) -> list[Row]:
    import streamlit.testing.v1.app_test as app_test

    from bench.common import _ensure_bench_user
    from tests.conftest import _navigation_only_pages_manager

    db = ctx.db()
    user_id = _ensure_bench_user(db)
    os.environ["DATABASE_URL"] = db.url
    app_test.PagesManager = _navigation_only_pages_manager()  # as tests/conftest.py does for the app fixture
    seconds, at = median_time(lambda: render(db, user_id), reps=ctx.reps)
    charts = len(at.get("plotly_chart"))
    row = Row("B6", WHAT, seconds, None, TARGET, met=seconds <= 2.0, extra={"plotly_charts": charts})
    row.note = f"{charts} charts" + ("" if row.met else f"; {seconds / 2:.1f}× the 2 s")
    return [row]
