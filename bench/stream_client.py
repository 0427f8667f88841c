"""A staff member's browser tab without the browser: Streamlit's own websocket (`/_stcore/stream`) speaking the
installed streamlit package's protobuf messages, as the front end does.

The client sends a BackMsg `rerun_script` (the page's script hash, the widget states) and reads ForwardMsgs
until `script_finished`: the elements the run drew, the pages the navigation offers, and the time the run took.
Signing in is the sign-in form filled in and submitted, then the one-use ticket the page sends the browser to
(`/session/{ticket}`) exchanged for the session cookie, which every later connection presents, on any replica.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

COOKIE = "liaison_session"  # crmcore.admin.sessions.COOKIE
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
_TICKET = re.compile(r"window\.location\.replace\('(/session/[A-Za-z0-9_-]+\?next=[^']*)'\)")


@dataclass
class Widget:
    kind: str  # the element's type: text_input, button, selectbox …
    id: str
    label: str


@dataclass
class Run:
    """What one script run sent: its elements' kinds, widgets, errors and raw HTML, and how long it took."""

    seconds: float
    status: int | None = None
    kinds: list[str] = field(default_factory=list)
    widgets: list[Widget] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # st.error / st.exception shown on the page
    texts: list[str] = field(default_factory=list)  # headings, markdown, captions, html bodies
    pages: dict[str, str] = field(default_factory=dict)  # url path ("" for the default page) -> page script hash

    def widget(self, kind: str, label: str) -> Widget:
        for w in self.widgets:
            if w.kind == kind and w.label == label:
                return w
        raise LookupError(f"no {kind} labelled {label!r} on the page (widgets: {[(w.kind, w.label) for w in self.widgets]})")

    def shows(self, text: str) -> bool:
        return any(text in t for t in self.texts)


class Tab:
    """One websocket connection to one replica: a browser tab, with the cookies the browser holds."""

    def __init__(self, base: str, *, cookies: dict[str, str] | None = None, pages: dict[str, str] | None = None, timeout: float = 300):
        self.base = base.rstrip("/")
        self.cookies = dict(cookies or {})
        self.timeout = timeout
        self.pages: dict[str, str] = dict(pages or {})  # url path -> page script hash, from the navigation message
        self._ws = None

    async def __aenter__(self) -> Tab:
        url = urlsplit(self.base)
        headers = {"Origin": self.base}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self._ws = await websockets.connect(
            f"ws://{url.netloc}/_stcore/stream", subprotocols=["streamlit"], additional_headers=headers,
            max_size=None, open_timeout=self.timeout, ping_interval=None,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self._ws.close()

    async def run(self, page: str = "", *, widgets: list[tuple[Widget, str, object]] = ()) -> Run:
        """Rerun the script on `page` (its url path; "" the default page) with `widgets` set: (widget, proto field, value),
        e.g. (search_box, "string_value", "Smith") or (submit, "trigger_value", True). Returns when the run has finished."""
        msg = BackMsg()
        state = msg.rerun_script
        state.page_script_hash = self.pages.get(page, "")
        state.page_name = page
        state.query_string = ""
        state.context_info.timezone = "UTC"
        state.context_info.locale = "en-US"
        state.context_info.url = f"{self.base}/{page}"
        for widget, kind, value in widgets:
            w = state.widget_states.widgets.add()
            w.id = widget.id
            setattr(w, kind, value)
        start = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        run = Run(seconds=0.0)
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await self._ws.recv())
            what = fwd.WhichOneof("type")
            if what == "script_finished":
                run.seconds = time.perf_counter() - start
                run.status = fwd.script_finished
                if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # st.rerun(): the rerun that follows is part of the same page view
                break
            if what == "navigation":
                run.pages = {p.url_pathname: p.page_script_hash for p in fwd.navigation.app_pages}
                self.pages = run.pages
            elif what == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                _note(run, fwd.delta.new_element)
        return run

    async def sign_in(self, username: str, password: str) -> dict[str, str]:
        """Fill in and submit the sign-in form, then follow the page to /session/{ticket} as the browser does;
        the cookies the browser then holds (the session cookie), also kept for this tab's next connections."""
        form = await self.run()
        done = await self.run(widgets=[
            (form.widget("text_input", "Username"), "string_value", username),
            (form.widget("text_input", "Password"), "string_value", password),
            (form.widget("button", "Sign in"), "trigger_value", True),
        ])
        target = next((m.group(1) for t in done.texts if (m := _TICKET.search(t))), None)
        if target is None:
            raise RuntimeError(f"signing in as {username} failed: {done.errors or done.texts[-3:]}")
        # The browser follows the page's own redirect: same origin, so its Sec-Fetch-Site says so.
        answer = httpx.get(self.base + target, headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
        if answer.status_code != 303 or COOKIE not in answer.cookies:
            raise RuntimeError(f"the session route refused the ticket ({answer.status_code}): {answer.text[:200]}")
        self.cookies[COOKIE] = answer.cookies[COOKIE]
        return dict(self.cookies)


def _note(run: Run, element) -> None:
    kind = element.WhichOneof("type")
    run.kinds.append(kind)
    body = getattr(element, kind)
    if kind in ("exception",):
        run.errors.append(f"{body.type}: {body.message}")
    elif kind == "alert":
        run.texts.append(body.body)
        if body.format == body.ERROR:
            run.errors.append(body.body)
    elif kind in ("markdown", "html", "heading", "text"):
        run.texts.append(body.body)
    if hasattr(body, "id") and hasattr(body, "label") and body.id:
        run.widgets.append(Widget(kind, body.id, body.label))
