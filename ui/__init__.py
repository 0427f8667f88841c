"""What every page shares: the database handle, the signed-in staff member, the page list, and
small rendering helpers. UI only: behaviour lives in crmcore.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo
from urllib.parse import urlencode

import pandas as pd
import streamlit as st
from sqlalchemy.exc import OperationalError

from crmcore import exports, labels
from crmcore.admin import auth, config, sessions, settings
from crmcore.admin.permissions import Actor, Perm, PermissionDenied
from crmcore.campaigns import sending
from crmcore.db import Database, DatabaseError, is_busy, shared
from crmcore.languages import catalogues
from crmcore.privacy import downloads


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    perm: Perm | None  # None: open to every signed-in user
    section: str


ACCOUNT = "Account"  # pages of one's own account: every signed-in role, linked beside the Sign out button

# Every page of the app, in menu order; app.py shows a role the pages whose permission it has.
PAGES: list[PageSpec] = [
    PageSpec("pages/dashboard.py", "Dashboard", ":material/monitoring:", Perm.VIEW_DASHBOARD, "Overview"),
    PageSpec("pages/patrons.py", "Patrons", ":material/badge:", Perm.VIEW_PATRONS, "Patrons"),
    PageSpec("pages/outreach_log.py", "Log a contact", ":material/add_comment:", Perm.EDIT_OUTREACH, "Outreach"),
    PageSpec("pages/followups.py", "My follow-ups", ":material/checklist:", Perm.VIEW_OUTREACH, "Outreach"),
    PageSpec("pages/requests.py", "Requests", ":material/inbox:", Perm.VIEW_OUTREACH, "Outreach"),
    PageSpec("pages/organizations.py", "Organizations", ":material/corporate_fare:", Perm.VIEW_OUTREACH, "Outreach"),
    PageSpec("pages/contacts.py", "Contacts", ":material/contacts:", Perm.VIEW_OUTREACH, "Outreach"),
    PageSpec("pages/interactions.py", "Interactions", ":material/forum:", Perm.VIEW_OUTREACH, "Outreach"),
    PageSpec("pages/duplicates.py", "Duplicates", ":material/content_copy:", Perm.VIEW_OUTREACH, "Outreach"),
    PageSpec("pages/outreach_kpis.py", "Outreach KPIs", ":material/insights:", Perm.VIEW_DASHBOARD, "Outreach"),
    PageSpec("pages/peers.py", "Peers", ":material/compare_arrows:", Perm.VIEW_DASHBOARD, "Overview"),
    PageSpec("pages/personas.py", "Personas and lapse risk", ":material/groups:", Perm.VIEW_DASHBOARD, "Overview"),
    PageSpec("pages/segments.py", "Segments", ":material/filter_alt:", Perm.MANAGE_SEGMENTS, "Campaigns"),
    PageSpec("pages/campaigns.py", "Campaigns", ":material/campaign:", Perm.COMPOSE_CAMPAIGNS, "Campaigns"),
    PageSpec("pages/surveys.py", "Surveys", ":material/reviews:", Perm.COMPOSE_CAMPAIGNS, "Campaigns"),
    PageSpec("pages/sent_mail.py", "Sent mail", ":material/outbox:", Perm.COMPOSE_CAMPAIGNS, "Campaigns"),
    PageSpec("pages/journeys.py", "Journeys", ":material/route:", Perm.MANAGE_SEGMENTS, "Campaigns"),
    PageSpec("pages/new_materials.py", "New materials", ":material/new_releases:", Perm.COMPOSE_CAMPAIGNS, "Campaigns"),
    PageSpec("pages/signups.py", "Sign-ups", ":material/how_to_reg:", Perm.COMPOSE_CAMPAIGNS, "Campaigns"),
    PageSpec("pages/imports.py", "Imports", ":material/upload_file:", Perm.IMPORT_DATA, "Administration"),
    PageSpec("pages/admin_staff.py", "Staff", ":material/manage_accounts:", Perm.MANAGE_STAFF, "Administration"),
    PageSpec("pages/admin_settings.py", "Settings", ":material/settings:", Perm.MANAGE_SETTINGS, "Administration"),
    PageSpec("pages/categories.py", "Item categories", ":material/category:", Perm.MANAGE_SETTINGS, "Administration"),
    PageSpec("pages/audit_log.py", "Audit log", ":material/policy:", Perm.VIEW_AUDIT, "Administration"),
    PageSpec("pages/privacy_requests.py", "Privacy requests", ":material/privacy_tip:", Perm.PRIVACY_REQUESTS, "Administration"),
    PageSpec("pages/backup.py", "Backup", ":material/backup:", Perm.BACKUP, "Administration"),
    PageSpec("pages/account.py", "My account", ":material/person:", None, ACCOUNT),
]

# Reached without signing in (a patron following a link from a message).
PUBLIC_PAGES: list[PageSpec] = [
    PageSpec("pages/preferences.py", "Your preferences", ":material/tune:", None, "Public"),
]


def db() -> Database:
    """The process's Database (migrated on first use); stops the page with one clear line if it fails."""
    try:
        return shared(config.database_url())
    except DatabaseError as exc:
        st.error(str(exc))
        st.stop()


SESSION = "staff_session"  # the signed-in session's id, kept server-side in this tab's session state


def actor() -> Actor | None:
    """The signed-in staff member, re-checked each run (crmcore.admin.sessions): a session ends at once when
    its account is disabled, changes password or role, or signs out in another tab. A new tab or a reload
    resumes the browser's session from its cookie."""
    session_id = st.session_state.get(SESSION)
    if session_id is None:
        token = sessions.token_from_cookie(st.context.cookies.get(sessions.COOKIE))
        if token is None:
            return None
        with db().read() as session:
            session_id = sessions.resume(session, token=token)
        if session_id is None:
            return None
    current = sessions.current(db(), session_id=session_id)
    if current is None:
        st.session_state.pop(SESSION, None)
    else:
        st.session_state[SESSION] = session_id
    return current


def sign_in(username: str, password: str, *, next_path: str) -> str | None:
    """Sign in; returns the error message to show, or None once signed in. The browser is then sent through
    /session/… once, which sets its session cookie, and on to `next_path` (the page it asked for)."""
    try:
        signed_in = auth.sign_in(db(), username=username, password=password, client=st.context.ip_address)  # None on loopback: the operator
        with db().write() as session:
            started = sessions.start(session, actor=signed_in)
    except (auth.SignInError, LookupError) as exc:
        return str(exc)
    except OperationalError as exc:
        if not is_busy(exc):
            raise
        return BUSY
    st.session_state[SESSION] = started.session_id
    redirect(f"/session/{started.ticket}?{urlencode({'next': next_path})}")
    return None


_REDIRECT = re.compile(r"/session/[A-Za-z0-9_-]+\?next=[A-Za-z0-9%._~+-]*")


def redirect(target: str) -> None:
    """Send the browser to `target`: only the session route, in URL-safe characters (a next path arrives
    percent-encoded), so nothing typed or asked for can become markup or script."""
    if not _REDIRECT.fullmatch(target):
        raise ValueError(f"Not an address to send the browser to: {target[:80]!r}.")
    st.html(f"<script>window.location.replace('{target}')</script>", unsafe_allow_javascript=True)


def asked_for(page) -> str:
    """The address a signed-out visitor asked for (its page and query), to return to after signing in."""
    path = f"/{page.url_path}"  # "" for the default page
    query = st.query_params.to_dict()
    return f"{path}?{urlencode(query)}" if query else path


def sign_out() -> None:
    """End the session in every tab of this browser, and forget this tab's state."""
    session_id = st.session_state.get(SESSION)
    if session_id is not None:
        with user_errors(), db().write() as session:
            sessions.end(session, session_id=session_id)
    for key in list(st.session_state):
        del st.session_state[key]


BUSY = "The database is busy with other work right now; nothing was changed. Try again in a moment."


@contextmanager
def user_errors(language: str | None = None) -> Iterator[None]:
    """Show refusals and bad input as a clear message instead of a stack trace; on a public page in the
    patron's `language` where the message has a translation (crmcore.languages.catalogues)."""
    try:
        yield
    except (PermissionDenied, ValueError, LookupError) as exc:
        st.error(catalogues.said(language, exc))
    except OperationalError as exc:  # the write lock stayed taken (crmcore.db.INTERACTIVE_WAIT_MS)
        if not is_busy(exc):
            raise
        st.error(BUSY)


def act(action: Callable, **kwargs) -> None:
    """Run one service function as the signed-in staff member in its own transaction, then show the page
    afresh; bad input or a refusal is shown instead (user_errors)."""
    with user_errors():
        with db().write() as session:
            action(session, actor=actor(), **kwargs)
        refresh_after_write()
        st.rerun()


def sending_paused() -> dict:
    """Warn when the worker cannot send (outbox or SMTP down); the queue's status (crmcore.campaigns.sending)."""
    with db().read() as session:
        queue = sending.status(session, actor=actor())
    if queue["paused"]:
        st.warning(f"Sending is paused: {md(queue['paused'])} (since {local(queue['paused_at'], '%H:%M')}). "
                   f"{queue['waiting']:,} messages wait; they go out once this is fixed (the worker tries again every minute).")
    return queue


def zone() -> ZoneInfo:
    """The library's time zone (Settings → Time zone), read once per run."""
    with db().read() as session:
        return settings.library_zone(session)


def local(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time (UTC; a naive one is taken as UTC) as staff read it: in the library's time zone, with its
    abbreviation ("2026-03-02 09:30 CET")."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    shown = moment.astimezone(zone())
    return f"{shown.strftime(fmt)} {shown.tzname()}"


def local_frame(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """`frame` with its time columns (all datetime columns when none are named) in the library's time zone,
    as text with the zone's abbreviation."""
    frame = frame.copy()
    names = columns or [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    for c in names:
        frame[c] = [local(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) if v is not None and not pd.isna(v) else "—" for v in frame[c]]
    return frame


def typed_time(day: date, at: time) -> datetime:
    """A date and time staff typed, in the library's time zone, as the aware moment to store (crmcore keeps UTC)."""
    return datetime.combine(day, at, tzinfo=zone()).astimezone(timezone.utc)


# Read models a page keeps in st.cache_resource (shared by the sessions of this process, not copied for each run),
# by name: cleared with st.cache_data after a write. A page registers its cached function when it runs.
AFTER_WRITE: dict[str, Callable] = {}


def refresh_after_write() -> None:
    """Cached read models are stale after a write."""
    st.cache_data.clear()
    for cached in AFTER_WRITE.values():
        cached.clear()


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&:@])")


# Streamlit's markdown links bare addresses (http://…, www.…, name@host.…) after escapes are read, so a
# backslash cannot stop it and shows inside the link: an invisible word joiner breaks the pattern instead.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z]):(?=//)|(?<=\bwww)(?=\.)|(?<=\w)@(?=\w)")
WORD_JOINER = "\u2060"


def md(text: object) -> str:
    """User- or import-supplied text made inert for st.markdown (no links, HTML or formatting): it shows
    exactly as typed, with no backslash in sight."""
    plain = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER if m.group(0) else WORD_JOINER, "" if text is None else str(text))
    return _MD_SPECIAL.sub(r"\\\1", plain)


def table(data, **kwargs):
    """st.dataframe with plain column names and plain kinds, topics and states (crmcore.labels);
    `column_order` and `column_config` may name the columns as the data does."""
    frame = labels.frame(data if isinstance(data, pd.DataFrame) else pd.DataFrame(data))
    if kwargs.get("column_order"):
        kwargs["column_order"] = [labels.column(c) for c in kwargs["column_order"]]
    if kwargs.get("column_config"):
        kwargs["column_config"] = {labels.column(c): v for c, v in kwargs["column_config"].items()}
    return st.dataframe(frame, **kwargs)  # a selection, when on_select asks for one


def plain_figure(figure):
    """A Plotly figure with plain axis and legend titles and series names (crmcore.labels)."""
    layout = figure.layout
    for axis in ("xaxis", "yaxis"):
        title = getattr(layout, axis).title.text
        if title:
            getattr(layout, axis).title.text = labels.AXIS_LABELS.get(title) or labels.column(title)
    if layout.legend.title.text:
        layout.legend.title.text = labels.AXIS_LABELS.get(layout.legend.title.text) or labels.column(layout.legend.title.text)
    if layout.coloraxis.colorbar.title.text:
        layout.coloraxis.colorbar.title.text = labels.column(layout.coloraxis.colorbar.title.text)
    for trace in figure.data:
        if isinstance(getattr(trace, "name", None), str):
            trace.name = str(labels.value(trace.name)) if trace.name in labels.VALUE_LABELS else labels.column(trace.name)
        if isinstance(getattr(trace, "legendgroup", None), str):
            trace.legendgroup = str(labels.value(trace.legendgroup)) if trace.legendgroup in labels.VALUE_LABELS else labels.column(trace.legendgroup)
        template = getattr(trace, "hovertemplate", None)
        if isinstance(template, str):
            trace.hovertemplate = re.sub(r"(^|<br>)([a-z][a-z0-9_]*)=", lambda m: m.group(1) + (labels.AXIS_LABELS.get(m.group(2)) or labels.column(m.group(2))) + "=", template)
    return figure


def count(n: int, thing: str) -> str:
    """"1 interaction", "2,000 interactions": a number with its noun (a regular plural, -s)."""
    return f"{n:,} {thing}" + ("" if n == 1 else "s")


def chosen_caption(*picks: tuple[str, list, Callable[[object], object] | None]) -> None:
    """The values picked in multiselects, named in full under them (a chip shows only the first letters of a
    long name, "Eastwoo…"): one caption, nothing when nothing is picked. Each pick is (label, values, format)."""
    parts = [f"{label}: " + ", ".join(str(fmt(v) if fmt else v) for v in values) for label, values, fmt in picks if values]
    if parts:
        st.caption(md("Chosen — " + "; ".join(parts)))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download_buttons(frame: pd.DataFrame, *, name: str, key: str, xlsx: bool = False, personal: bool = False) -> None:
    """CSV (and optionally XLSX) downloads of `frame`, formula cells neutralised; `personal` ones (names,
    addresses, notes) through a one-use link (`personal_download`). A file is made when its button is pressed,
    not on every run of the page (B13: a dashboard run made some twenty CSVs nobody asked for)."""
    files = [("Download CSV", f"{name}.csv", "text/csv", lambda: exports.to_csv(frame), f"{key}-csv")]
    if xlsx:
        files.append(("Download XLSX", f"{name}.xlsx", XLSX, lambda: exports.to_xlsx(frame), f"{key}-xlsx"))
    places = st.columns(len(files)) if len(files) > 1 else [nullcontext()]  # one button: no row of columns around it
    for place, (label, file_name, content_type, make, button_key) in zip(places, files):
        with place:
            if personal:
                personal_download(label, file_name=file_name, content_type=content_type, make=make, key=button_key)
            else:
                st.download_button(label, make, file_name, content_type, key=button_key, on_click="ignore")


def personal_download(label: str, *, file_name: str, content_type: str, make: Callable[[], bytes], key: str) -> None:
    """A file holding personal data: pressing the button makes a link for this staff member that works once,
    within a minute (crmcore.privacy.downloads), never a Streamlit media URL that outlives the request."""
    if not st.button(label, key=key, icon=":material/download:"):
        return
    link = None
    with user_errors():
        data = make()  # first: making it may need a transaction of its own (an audited export)
        with db().write() as session:
            link = downloads.offer(session, actor=actor(), file_name=file_name, content_type=content_type, data=data)
    if link:
        st.link_button(f"Save {file_name} (works once, within a minute)", link, type="primary", icon=":material/save:")
