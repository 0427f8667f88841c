"""Several app replicas: two uvicorn servers on loopback sharing one database and one signing key. A staff member
signed in through one replica's sign-in form is signed in on the other, as the same person, and signing out on
either ends the session on both; a replica with another key does not honour the cookie. Real HTTP and Streamlit's
own websocket (bench/stream_client.py, the client benchmark B13 drives its simulated staff with)."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bench.stream_client import Tab
from crmcore.models import AuditLog, Patron
from tests.campaign_fixtures import _isolated_mail_config, free_port  # noqa: F401  (the test's own signing key)
from tests.conftest import PASSWORD
from tests.web_server import serving


def _signed_in_as(run, username: str) -> bool:
    return run.shows(f"Signed in as **{username}**")


def _sign_in_form(run) -> bool:
    return any(w.kind == "text_input" and w.label == "Username" for w in run.widgets) and not run.shows("Signed in as")


def test_a_session_signed_in_on_one_replica_works_on_the_other_and_ends_on_both(db, staff):
    with db.write() as s:
        s.add(Patron(ils_id="R-4711", first_name="Ada", last_name="Quill"))
    with serving(db, port=free_port()) as a, serving(db, port=free_port()) as b:

        async def scenario() -> None:
            async with Tab(a) as tab:
                cookies = await tab.sign_in("manager", PASSWORD)
            async with Tab(b, cookies=cookies) as tab:
                home = await tab.run()
                assert not home.errors and _signed_in_as(home, "manager") and home.shows("Dashboard")
                form = await tab.run("patrons")
                found = await tab.run("patrons", widgets=[
                    (form.widget("selectbox", "Search by"), "string_value", "ILS id"),
                    (form.widget("text_input", "Search for"), "string_value", "R-4711"),
                    (form.widget("button", "Search"), "trigger_value", True),
                ])
                assert not found.errors and found.shows("Patrons 1–1") and "dataframe" in found.kinds
            with db.read() as s:  # replica B acted as the manager who signed in on replica A
                searched = s.exec(select(AuditLog).where(AuditLog.action == "patron.search")).all()
            assert [entry.actor_id for entry in searched] == [staff["manager"].id]

            async with Tab(b, cookies=cookies) as tab:
                page = await tab.run()
                await tab.run(widgets=[(page.widget("button", "Sign out"), "trigger_value", True)])
            async with Tab(a, cookies=cookies) as tab:
                assert _sign_in_form(await tab.run())  # signed out on B: the same cookie is nobody on A

        asyncio.run(scenario())


def test_a_replica_with_another_signing_key_does_not_honour_the_cookie(db, staff):
    with serving(db, port=free_port()) as a, serving(db, port=free_port(), env={"CRM_SECRET_KEY": "another deployment's key"}) as other:

        async def scenario() -> None:
            async with Tab(a) as tab:
                cookies = await tab.sign_in("viewer", PASSWORD)
            async with Tab(other, cookies=cookies) as tab:
                assert _sign_in_form(await tab.run())
            async with Tab(a, cookies=cookies) as tab:  # the cookie itself is sound where the key matches
                assert _signed_in_as(await tab.run(), "viewer")

        asyncio.run(scenario())
