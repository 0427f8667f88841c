"""End to end in a real browser: Debian's Chromium driven by Playwright against the app and the worker
started here on loopback, over a fresh SQLite file holding a small demo library, sending to an aiosmtpd
sink. One staff member's day, step by step, with a screenshot of each step under tests/artifacts/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import func, select

from crmcore.admin import auth
from crmcore.admin.permissions import Actor, Role
from crmcore.campaigns import segments
from crmcore.db import Database, migrate
from crmcore.library import consent
from crmcore.models import Message, Patron, Segment, StaffUser
from tests.conftest import PASSWORD, ROOT, require_or_skip

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "tests" / "artifacts"
STAFF_USER = "e2e-manager"
ADMIN_USER = "e2e-admin"  # sees every page
DEMO_PATRONS = 300
MANAGER = Actor(id=None, username="e2e-check", role=Role.MANAGER)
WAIT_MS = 60_000  # Streamlit reruns asynchronously: wait for what a step should show, up to this long


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """An SMTP server on loopback that keeps every message it receives."""

    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp_sink():
    from aiosmtpd.controller import Controller

    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


def _seed(url: str) -> None:
    """A small demo library and one manager whose password the test knows."""
    from crmcore.demo.library import generate

    migrate(url)
    db = Database(url)
    generate(db, patrons=DEMO_PATRONS, seed=7)
    with db.write() as session:
        session.add(StaffUser(username=STAFF_USER, role="manager", password_hash=auth.hash_password(PASSWORD), display_name="E2E Manager"))
        session.add(StaffUser(username=ADMIN_USER, role="admin", password_hash=auth.hash_password(PASSWORD), display_name="E2E Admin"))
    db.dispose()


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the app did not answer on {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, smtp_sink):
    """The app and the worker, started the way an operator starts them, on a fresh seeded database."""
    require_or_skip(Path(CHROMIUM).exists(), f"the browser tests need Debian's chromium at {CHROMIUM}")
    work = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{work / 'crm.db'}"
    _seed(url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CRM_PUBLIC_URL": base,
        "CRM_SECRET_KEY": "e2e-secret-key-not-for-production",
        "CRM_SMTP_HOST": "127.0.0.1",
        "CRM_SMTP_PORT": str(smtp_sink.port),
        "CRM_SMTP_STARTTLS": "false",
        "CRM_MAIL_FROM": "library@e2e.test",
        "CRM_OUTBOX_DIR": str(work / "outbox"),
        "CRM_BACKUP_DIR": str(work / "backups"),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    app_log, worker_log = ARTIFACTS / "app.log", ARTIFACTS / "worker.log"  # kept for reading after a failure
    # As `python -m crmcore serve` runs it: Streamlit's st.App with the public routes, under uvicorn.
    app_cmd = [sys.executable, "-m", "uvicorn", "server:app", "--app-dir", str(ROOT), "--host", "127.0.0.1", "--port", str(port)]
    with app_log.open("w") as app_out, worker_log.open("w") as worker_out:
        app = subprocess.Popen(app_cmd, cwd=ROOT, env=env, stdout=app_out, stderr=subprocess.STDOUT)
        worker = subprocess.Popen([sys.executable, "-m", "crmcore", "worker"], cwd=ROOT, env=env, stdout=worker_out, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(base, app, app_log)
            yield {"url": base, "database_url": url, "app_log": app_log, "worker_log": worker_log}
        finally:
            for proc in (worker, app):
                proc.terminate()
            for proc in (worker, app):
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Steps:
    """Screenshots named after the steps, in order."""

    def __init__(self, name: str):
        self.dir = ARTIFACTS / name
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.count = 0

    def shot(self, page, step: str, focus=None) -> Path:
        """A screenshot of the page, scrolled to `focus` (a locator) first: Streamlit scrolls inside its own pane."""
        if focus is not None:
            from playwright.sync_api import Error as PlaywrightError

            settle(page)
            for attempt in range(3):
                try:
                    focus.scroll_into_view_if_needed()
                    break
                except PlaywrightError:  # re-rendered under the scroll (seen once in CI): the locator finds the new one
                    if attempt == 2:
                        raise
                    page.wait_for_timeout(500)
        self.count += 1
        path = self.dir / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True, timeout=120_000)
        print(f"screenshot: {path}")
        return path


def settle(page) -> None:
    """Wait until Streamlit has finished the current run (no 'Running…' status widget)."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=WAIT_MS)


def no_exception(page) -> None:
    """Fail with the page's text when Streamlit shows an exception box or an error."""
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


def sign_in(page, base: str, username: str = STAFF_USER) -> None:
    page.goto(base)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {username}").wait_for(timeout=WAIT_MS)


def record_outside_requests(context, base: str) -> list[str]:
    """Every request the pages of `context` make to another origin than the app's (a font, an icon, a map
    tile, a script from a CDN), as "METHOD url" in the order made. A library's staff app requests nothing
    from outside its own server."""
    from urllib.parse import urlsplit

    own = urlsplit(base)
    outside: list[str] = []

    def seen(request) -> None:
        where = urlsplit(request.url)
        if where.scheme in ("data", "blob", "about", "chrome-extension"):
            return
        if (where.scheme.replace("ws", "http"), where.netloc) != (own.scheme, own.netloc):
            outside.append(f"{request.method} {request.url}")

    context.on("request", seen)
    return outside


def open_page(page, title: str) -> None:
    """Follow the sidebar link to a page, as a user does (a fresh URL would start a new session)."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=WAIT_MS)
    settle(page)


def choose(page, label: str, option: str, *, new: bool = False, last: bool = False) -> None:
    """Pick `option` in a Streamlit select/multiselect by typing it (new: add it as a new option;
    last: the last of several widgets with this label)."""
    widgets = page.locator('[data-testid="stMultiSelect"], [data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True))
    widget = widgets.last if last else widgets
    field = widget.locator("input")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    wanted = page.get_by_role("option", name=re.compile(re.escape(option))).first
    for attempt in range(3):
        settle(page)  # a widget re-rendered by a run still in flight can move under the click ("Select all")
        field.click()
        field.fill(option)
        try:
            wanted.wait_for(timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            # The click landed on "Select all" as the list moved: take every pick back and try again.
            field.fill("")
            for _ in range(widget.locator('[data-baseweb="tag"]').count()):
                field.press("Backspace")
            page.keyboard.press("Escape")
    if new:
        field.press("Enter")
    else:
        wanted.click()
    if widget.get_attribute("data-testid") == "stMultiSelect":
        page.keyboard.press("Escape")  # close the list left open for more picks


def log_interaction(page, org: str, note: str) -> None:
    open_page(page, "Log a contact")
    choose(page, "Organizations", org, new=True)
    page.get_by_role("textbox", name="Notes").fill(note)
    page.get_by_role("button", name="Log it").click()
    page.get_by_text(f"with {org}").first.wait_for()
    settle(page)


def find_in_timeline(page, org: str, note: str) -> None:
    open_page(page, "Organizations")
    choose(page, "Open an organization", org)
    page.get_by_role("heading", name=org).wait_for()
    page.get_by_text(note).wait_for()
    settle(page)


def build_segment(page, name: str, zone: str) -> int:
    """Patrons in one zone who consent to the newsletter by email; returns the count the page shows."""
    open_page(page, "Segments")
    page.get_by_role("button", name="Add condition").click()
    choose(page, "Field", "Consent", last=True)
    choose(page, "Topic", "newsletter", last=True)
    page.get_by_role("button", name="Add condition").click()
    choose(page, "Values", zone, last=True)
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Matching patrons")
    metric.wait_for()
    settle(page)
    shown = int(metric.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))
    page.get_by_role("textbox", name="Name").first.fill(name)
    page.get_by_role("button", name="Save as a new segment").click()
    page.get_by_text(f"Segment {name} saved.").wait_for()
    settle(page)
    return shown


def launch_campaign(page, name: str, segment: str, subject: str) -> None:
    open_page(page, "Campaigns")
    page.get_by_role("textbox", name="Name").fill(name)
    choose(page, "Segment", segment)
    choose(page, "Topic (patrons consent per topic)", "Newsletter")  # the topic by its label
    page.get_by_role("textbox", name="Subject").fill(subject)
    page.get_by_role("textbox", name="Message").fill("Dear {{ first_name }},\n\nThe summer reading club starts in June.")
    holdout = page.get_by_role("spinbutton", name=re.compile("Holdout"))
    holdout.fill("0")
    holdout.press("Tab")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_role("tab", name="Launch").wait_for()
    settle(page)
    page.get_by_role("tab", name="Launch").click()
    page.get_by_role("button", name="Launch…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Launch", exact=True).click()
    page.get_by_text(re.compile(r"Launched: [\d,]+ messages queued")).wait_for()
    settle(page)


def wait_for_results(page, expected: int) -> None:
    """Refresh the campaign's results until the worker has sent every message (the page does not poll)."""
    deadline = time.monotonic() + 120
    page.get_by_role("tab", name="Results").click()
    while True:
        sent = page.locator('[data-testid="stMetric"]').filter(has_text="Sent").locator('[data-testid="stMetricValue"]')
        if int(sent.inner_text().replace(",", "")) == expected or time.monotonic() > deadline:
            break
        page.wait_for_timeout(2000)  # the worker sends in the background: look again shortly
        page.get_by_role("button", name="Refresh").click()
        settle(page)
    assert int(sent.inner_text().replace(",", "")) == expected


def test_a_manager_works_through_the_day_in_chromium(live_app, browser, smtp_sink):
    steps = Steps("manager_day")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside = record_outside_requests(context, live_app["url"])
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        sign_in(page, live_app["url"])
        settle(page)
        no_exception(page)
        steps.shot(page, "signed-in")

        org, note = "E2E Farmers Market Co-op", "Met the PTA at the farmers market; 12 card sign-ups."
        log_interaction(page, org, note)
        no_exception(page)
        steps.shot(page, "outreach-logged")

        find_in_timeline(page, org, note)
        no_exception(page)
        steps.shot(page, "organization-timeline", focus=page.get_by_text(note))

        db = Database(live_app["database_url"])
        segment = "E2E newsletter readers in Downtown"
        shown = build_segment(page, segment, "Downtown")
        with db.read() as session:
            saved = session.exec(select(Segment).where(Segment.name == segment)).one()
            assert shown == segments.count(session, actor=MANAGER, rules=saved.rules) > 0
        no_exception(page)
        steps.shot(page, "segment-count", focus=page.locator('[data-testid="stMetric"]').filter(has_text="Matching patrons"))

        subject = "Summer reading starts soon"
        launch_campaign(page, "E2E summer reading", segment, subject)
        with db.read() as session:
            queued = session.exec(select(func.count()).select_from(Message).where(Message.status != "holdout")).one()
        assert 0 < queued <= shown
        wait_for_results(page, queued)
        no_exception(page)
        steps.shot(page, "campaign-results")
        received = [m for m in smtp_sink.messages if m["Subject"] == subject]
        assert len(received) == queued

        message = received[0]
        link = re.search(r"https?://\S+", message.get_body(preferencelist=("plain",)).get_content()).group(0)
        assert link.startswith(live_app["url"]), link
        patron = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
        patron.set_default_timeout(WAIT_MS)
        patron.goto(link)
        patron.get_by_role("heading", name="Your preferences").wait_for()
        unsubscribe = patron.get_by_role("button", name="Unsubscribe from everything")
        unsubscribe.wait_for()
        settle(patron)
        steps.shot(patron, "preference-page")
        unsubscribe.click()
        try:
            patron.get_by_text("You are unsubscribed from everything").wait_for()
        except Exception:
            steps.shot(patron, "FAILED-patron")
            raise
        settle(patron)
        no_exception(patron)
        steps.shot(patron, "unsubscribed")
        patron.context.close()
        address = message["To"].addresses[0].addr_spec
        with db.read() as session:
            who = session.exec(select(Patron).where(Patron.email == address)).one()
            assert not any(consent.current(session, who.id).values())
        db.dispose()

        open_page(page, "Dashboard")
        charts = page.locator('[data-testid="stPlotlyChart"] svg.main-svg')
        charts.first.wait_for()
        assert charts.count() >= 2
        no_exception(page)
        steps.shot(page, "dashboard")
        assert outside == [], outside
    except Exception:
        try:
            steps.shot(page, "FAILED")
        except Exception as exc:  # never hide the step's own failure behind the screenshot's
            print(f"no screenshot of the failure: {exc}")
        raise
    finally:
        print(f"screenshots in {steps.dir}; app log {live_app['app_log']}; worker log {live_app['worker_log']}")
        context.close()


def test_sign_in_survives_a_reload_and_a_new_tab_lands_on_the_asked_page_and_sign_out_ends_every_tab(live_app, browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    base = live_app["url"]
    try:
        page.goto(f"{base}/segments")  # a bookmark, signed out: the sign-in form at that address, no "Page not found"
        page.get_by_role("button", name="Sign in").wait_for()
        assert page.locator('[data-testid="stDialog"]').count() == 0
        page.get_by_role("textbox", name="Username").fill(STAFF_USER)
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text(f"Signed in as {STAFF_USER}").wait_for()
        page.get_by_role("heading", name="Segments").first.wait_for()  # landed on the page asked for
        assert page.url.rstrip("/").endswith("/segments")
        cookie = next(c for c in context.cookies() if c["name"] == "liaison_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie").find("liaison_session") == -1  # no script can read it

        page.reload()
        page.get_by_text(f"Signed in as {STAFF_USER}").wait_for()  # still signed in after a reload
        other = context.new_page()
        other.set_default_timeout(WAIT_MS)
        other.goto(f"{base}/campaigns")
        other.get_by_text(f"Signed in as {STAFF_USER}").wait_for()  # and in a new tab, on its own page
        other.get_by_role("heading", name="Campaigns").first.wait_for()
        settle(other)

        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="Sign in").wait_for()
        open_page_link = other.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Segments", exact=True)
        open_page_link.click()  # the next click in the other tab finds the session ended
        other.get_by_role("button", name="Sign in").wait_for()
        other.reload()
        other.get_by_role("button", name="Sign in").wait_for()
        no_exception(other)
    finally:
        context.close()


def test_no_page_requests_anything_from_another_origin(live_app, browser):
    """Every page an admin reaches, the sign-in page and a patron's preference page: all from this server only."""
    import ui

    base = live_app["url"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside = record_outside_requests(context, base)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    visited = {}
    try:
        sign_in(page, base, ADMIN_USER)
        settle(page)
        visited["sign-in"] = list(outside)
        nav = page.get_by_test_id("stSidebarNav")
        for spec in ui.PAGES:  # an admin sees every page in the menu, none behind "View N more"
            if spec.section != ui.ACCOUNT:
                assert nav.get_by_role("link", name=spec.title, exact=True).is_visible(), spec.title
        assert nav.get_by_text(re.compile(r"View \d+ more")).count() == 0, nav.inner_text()
        for spec in ui.PAGES:
            before = len(outside)
            page.goto(f"{base}/{Path(spec.path).stem}")  # the cookie resumes the session on each address
            page.get_by_test_id("stSidebarUserContent").get_by_text(f"Signed in as {ADMIN_USER}").wait_for()
            settle(page)
            for _ in range(2):  # charts and maps load what they need once drawn: scroll everything into view, let it load
                page.evaluate("for (const pane of document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer]')) pane.scrollTo(0, pane.scrollHeight)")
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(1000)
            no_exception(page)
            visited[spec.title] = outside[before:]
        before = len(outside)
        page.goto(f"{base}/preferences?token=not-a-real-token")
        page.get_by_role("heading", name="Your preferences").wait_for()
        settle(page)
        visited["Your preferences"] = outside[before:]
    finally:
        context.close()
    assert len(visited) == len(ui.PAGES) + 2
    assert {name: found for name, found in visited.items() if found} == {}


AXE = ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"  # `make install`: npm, never fetched at run time
AXE_IMPACTS = ("serious", "critical")
# Violations that come from Streamlit's own markup and that the app cannot change, as (rule id, CSS selector of
# the part of the page it sits in): excluded exactly, nothing else.
AXE_STREAMLIT_OWN: list[tuple[str, str]] = [
    # The sidebar's page list grouped in sections (st.navigation): Streamlit 1.67 writes <ul> holding a <div> per
    # section header and the <li> links inside those <div>s, so axe finds <li> outside a list and a <ul> holding
    # a <div>. The markup is Streamlit's (SidebarNav); the app only names the pages and sections.
    ("list", '[data-testid="stSidebarNav"]'),
    ("listitem", '[data-testid="stSidebarNav"]'),
]
_AXE_RUN = """async (excluded) => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.filter(n => {
        const el = document.querySelector(n.target[0]);
        return !excluded.some(([rule, within]) => rule === v.id && el && el.closest(within));
    }).map(n => n.target.join(' ')),
}))"""


def axe_violations(page, where: str) -> list[str]:
    """Serious and critical axe-core violations on the page as shown now, as "page: rule (impact) target"."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(_AXE_RUN, [list(pair) for pair in AXE_STREAMLIT_OWN])
    return [
        f"{where}: {v['id']} ({v['impact']}: {v['help']}) at {target}"
        for v in found
        if v["impact"] in AXE_IMPACTS
        for target in v["targets"]
    ]


def test_every_page_has_no_serious_accessibility_violation(live_app, browser):
    """axe-core on every page an admin reaches, the sign-in page and a patron's preference page."""
    import ui

    require_or_skip(AXE.exists(), f"the accessibility test needs axe-core at {AXE} (make install)")
    base = live_app["url"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    try:
        page.goto(base)
        page.get_by_role("button", name="Sign in").wait_for()
        settle(page)
        problems += axe_violations(page, "Sign in")
        sign_in(page, base, ADMIN_USER)
        settle(page)
        for spec in ui.PAGES:
            page.goto(f"{base}/{Path(spec.path).stem}")
            page.get_by_test_id("stSidebarUserContent").get_by_text(f"Signed in as {ADMIN_USER}").wait_for()
            settle(page)
            page.wait_for_timeout(500)
            no_exception(page)
            problems += axe_violations(page, spec.title)
        patron = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
        patron.set_default_timeout(WAIT_MS)
        patron.goto(f"{base}/preferences?token=not-a-real-token")
        patron.get_by_role("heading", name="Your preferences").wait_for()
        settle(patron)
        problems += axe_violations(patron, "Your preferences")
        patron.context.close()
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


def test_a_draft_being_typed_survives_a_reload_for_its_author_only(live_app, browser):
    """The interaction log's notes and a campaign's message: typed, the page reloaded, the text still there;
    another staff member signing in on the same browser finds none of it; logging the contact clears it."""
    base = live_app["url"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    note, message = "Story time at the farmers market went well; the PTA wants", "Dear {{ first_name }},\n\nHalf-typed news about the"
    try:
        sign_in(page, base)
        settle(page)
        open_page(page, "Log a contact")
        page.get_by_role("textbox", name="Notes").fill(note)
        stored = "n => Object.keys(localStorage).some(k => k.endsWith('|' + n))"
        page.wait_for_function(stored, arg="outreach-notes")  # kept in the browser, typed before or after its script ran
        open_page(page, "Campaigns")
        page.get_by_role("textbox", name="Message").fill(message)
        page.wait_for_function(stored, arg="campaign-new-body")
        page.reload()
        page.get_by_text(f"Signed in as {STAFF_USER}").wait_for()
        page.get_by_role("heading", name="Campaigns").first.wait_for()
        settle(page)
        body = page.get_by_role("textbox", name="Message")
        page.wait_for_function("([el, v]) => el.value === v", arg=[body.element_handle(), message], timeout=WAIT_MS)
        open_page(page, "Log a contact")
        notes = page.get_by_role("textbox", name="Notes")
        page.wait_for_function("([el, v]) => el.value === v", arg=[notes.element_handle(), note], timeout=WAIT_MS)

        page.get_by_role("button", name="Sign out").click()  # another staff member on the same browser
        page.get_by_role("button", name="Sign in").wait_for()  # signed out before the next one signs in
        sign_in(page, base, ADMIN_USER)
        settle(page)
        open_page(page, "Log a contact")
        page.wait_for_timeout(1500)  # time for a draft to be restored, were there one
        assert page.get_by_role("textbox", name="Notes").input_value() == ""

        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="Sign in").wait_for()
        sign_in(page, base)
        settle(page)
        open_page(page, "Log a contact")  # the author again: the draft is back, and logging it clears it
        notes = page.get_by_role("textbox", name="Notes")
        page.wait_for_function("([el, v]) => el.value === v", arg=[notes.element_handle(), note], timeout=WAIT_MS)
        org = "E2E Draft Farmers Market"
        choose(page, "Organizations", org, new=True)
        page.get_by_role("button", name="Log it").click()
        page.get_by_text(f"with {org}").first.wait_for()
        settle(page)
        assert page.evaluate("Object.keys(localStorage).filter(k => k.endsWith('|outreach-notes'))") == []
        page.reload()
        page.get_by_role("heading", name="Log a contact").first.wait_for()
        settle(page)
        page.wait_for_timeout(1500)
        assert page.get_by_role("textbox", name="Notes").input_value() == ""
        no_exception(page)
    finally:
        context.close()


def test_a_request_from_the_public_form_is_answered_by_email(live_app, browser, smtp_sink):
    """A patron asks through /request (plain HTML, no script); a manager opens it on Requests and replies; the
    reply leaves by e-mail with the request's reference in its subject."""
    base = live_app["url"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(f"{base}/request")
        page.get_by_label("Your name").fill("Robin Reader")
        page.get_by_label("Your e-mail address").fill("robin@example.org")
        page.get_by_label("Topic").select_option(label="E-resources")
        page.get_by_label("Your message").fill("The e-book app says my card has expired.")
        page.get_by_role("button", name="Send").click()
        reference = re.search(r"REQ-\d+-[0-9a-f]{8}", page.get_by_text("Your reference is").inner_text())[0]
        sign_in(page, base)
        settle(page)
        open_page(page, "Requests")
        choose(page, "Open a request", reference)
        page.get_by_text("From the requester").first.wait_for()  # the thread is open
        page.get_by_role("textbox", name="Reply (sent by e-mail from the library's help address)").fill("Your card is renewed: try the app again.")
        page.get_by_role("button", name="Send reply").click()
        page.get_by_text("Reply by E2E Manager").first.wait_for()
        deadline = time.monotonic() + 30
        while not any(reference in str(m["Subject"]) for m in smtp_sink.messages) and time.monotonic() < deadline:
            time.sleep(0.2)
        (sent,) = [m for m in smtp_sink.messages if reference in str(m["Subject"])]
        assert str(sent["To"]) == "robin@example.org" and "renewed" in sent.get_body(("plain",)).get_content()
        no_exception(page)
    finally:
        context.close()


def test_a_manager_starts_and_activates_a_journey(live_app, browser):
    """Journeys: start from the Welcome template, activate it; the database holds it active."""
    from sqlalchemy import create_engine, text

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        sign_in(page, live_app["url"])
        settle(page)
        open_page(page, "Journeys")
        page.get_by_role("textbox", name="Name").fill("E2E welcome")
        page.get_by_role("button", name="Start the journey").click()
        page.get_by_text("Journey 'E2E welcome' started (not active yet).").wait_for()
        settle(page)
        page.get_by_role("button", name="Activate").click()
        page.get_by_text("E2E welcome — active, version 1").wait_for()
        settle(page)
        no_exception(page)
    finally:
        context.close()
    engine = create_engine(live_app["database_url"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM journey WHERE name = 'E2E welcome'")).scalar_one() == "active"
    engine.dispose()


def test_a_patron_answers_a_survey_on_a_phone_and_the_nps_changes(live_app, browser, monkeypatch):
    """Five promoters have answered; a patron answers on a phone-sized screen with a 0; the manager's
    Surveys page shows the NPS move from +100 to +67 (5 promoters, 1 detractor of 6)."""
    from crmcore.surveys import definitions, responses, tokens

    monkeypatch.setenv("CRM_SECRET_KEY", "e2e-secret-key-not-for-production")  # the app's key: links it accepts
    db = Database(live_app["database_url"])
    with db.write() as session:
        ids = list(session.exec(select(Patron.id).where(Patron.erased_at.is_(None)).order_by(Patron.id).limit(6)))
        survey = definitions.save(session, actor=MANAGER, name="E2E visit survey", follow_up_role="manager",
                                  questions=[{"type": "nps", "text": "How likely are you to recommend the library?"}, {"type": "text", "text": "Why?"}])
        survey.status = "open"
        session.flush()
        for pid in ids[:5]:
            token = tokens.maker(survey.id)(pid)
            responses.answer(session, token=token, form_token=tokens.form_token(tokens.read(token)), fields={"q1": ["10"]})
        phone_link = f"{live_app['url']}/survey/{tokens.maker(survey.id)(ids[5])}"
    db.dispose()
    base = live_app["url"]
    staff_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, java_script_enabled=False)
    try:
        page = staff_context.new_page()
        page.set_default_timeout(WAIT_MS)
        sign_in(page, base)
        settle(page)
        open_page(page, "Surveys")
        metric = page.locator('[data-testid="stMetric"]').filter(has_text="NPS").first
        metric.get_by_text("+100").wait_for()

        patron = phone.new_page()
        patron.goto(phone_link)
        patron.get_by_role("heading", name="E2E visit survey").wait_for()
        assert patron.evaluate("document.documentElement.scrollWidth") <= 390  # fits the phone: no sideways scrolling
        patron.get_by_role("radio", name="0", exact=True).check()
        patron.get_by_role("textbox", name="Why?").fill("The wifi keeps dropping")
        patron.get_by_role("button", name="Send my answers").click()
        patron.get_by_text("Thank you: your answers are saved.").wait_for()

        page.reload()
        page.get_by_text(f"Signed in as {STAFF_USER}").wait_for()
        settle(page)
        open_page(page, "Surveys")
        page.locator('[data-testid="stMetric"]').filter(has_text="NPS").first.get_by_text("+67").wait_for()
        no_exception(page)
    finally:
        phone.close()
        staff_context.close()
