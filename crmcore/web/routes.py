"""The public routes: each parses the request, calls crmcore, answers. A GET never changes anything (link
scanners open links), but for a one-use download and the sign-in ticket (neither is ever in a message); the
one POST checks its token and its body. Database work runs in a worker thread, never on the event loop
that Streamlit's own sessions share."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from crmcore import db as database
from crmcore.admin import sessions, settings
from crmcore.campaigns import unsubscribe
from crmcore.outreach import calendar
from crmcore.privacy import downloads
from crmcore.surveys import responses as survey_responses
from crmcore.surveys import tokens as survey_tokens
from crmcore.web import limits, survey_form
from crmcore.web.pages import page

log = logging.getLogger("liaison.web")
ONE_CLICK = "List-Unsubscribe=One-Click"
MAX_BODY = 4096
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _db():
    return database.shared()


def _plain(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=NO_STORE)


async def unsubscribe_page(request: Request) -> Response:
    """GET /unsubscribe/{token}: what the link stops, and one button; nothing changes until it is pressed."""
    token = request.path_params["token"]

    def look() -> unsubscribe.Subject:
        with _db().read() as session:
            return unsubscribe.subject(session, token)

    footer = await run_in_threadpool(_footer)
    try:
        found = await run_in_threadpool(look)
    except ValueError as exc:
        return HTMLResponse(page("Unsubscribe", str(exc), footer=footer), status_code=400, headers=NO_STORE)
    form = (f"/unsubscribe/{token}", {"List-Unsubscribe": "One-Click", "from": "page"}, "Unsubscribe")
    return HTMLResponse(page("Unsubscribe", f"Stop {found.described} from the library?", form=form, footer=footer), headers=NO_STORE)


def _footer() -> list[str]:
    """The library's name and postal address, as at the foot of its messages."""
    with _db().read() as session:
        brand = settings.branding(session)
    return [line for line in [brand.name, *brand.address.splitlines()] if line]


async def unsubscribe_now(request: Request) -> Response:
    """POST /unsubscribe/{token} (RFC 8058): the body must be List-Unsubscribe=One-Click, form-encoded or
    multipart/form-data as mail providers send it; idempotent."""
    fields = await _form(request)
    if fields.get("List-Unsubscribe") != "One-Click":
        return _plain(400, f"A one-click unsubscribe is a POST whose body is {ONE_CLICK}.")
    def withdraw() -> unsubscribe.Subject:
        with _db().write() as session:
            return unsubscribe.withdraw(session, token=request.path_params["token"], source="one-click")[0]

    try:
        found = await run_in_threadpool(withdraw)
    except ValueError as exc:
        return _plain(400, str(exc))
    if fields.get("from") == "page":
        return HTMLResponse(page("Unsubscribed", f"You will get no more {found.described} from the library.",
                                 "You can change this at any time from the preferences link in any of our messages.", footer=await run_in_threadpool(_footer)), headers=NO_STORE)
    return _plain(200, "Unsubscribed.")


async def _form(request: Request) -> dict[str, str]:
    """The posted fields, small ones only; {} for anything that is not a small form."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip() in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form(max_files=0, max_fields=20, max_part_size=MAX_BODY)
        except Exception:  # a malformed form is "not the one-click body", never a stack trace
            return {}
        return {k: v for k, v in form.items() if isinstance(v, str)}
    body = await request.body()  # no content type: the bare body RFC 8058 names
    return {k: v[0] for k, v in parse_qs(body[:MAX_BODY].decode("utf-8", "replace")).items()}


async def calendar_feed(request: Request) -> Response:
    """GET /calendars/{token}.ics: a staff member's subscribed calendar, as it is now."""
    def build() -> bytes | None:
        with _db().read() as session:
            return calendar.feed(session, token=request.path_params["token"])

    content = await run_in_threadpool(build)
    if content is None:
        return _plain(404, "No calendar at this address: the link was reset or stopped.")
    return Response(content, media_type="text/calendar", headers=NO_STORE)


async def download(request: Request) -> Response:
    """GET /downloads/{token}: a file holding personal data, once, within a minute of being offered."""
    def take() -> downloads.File:
        with _db().write() as session:
            return downloads.take(session, token=request.path_params["token"])

    try:
        file = await run_in_threadpool(take)
    except ValueError as exc:
        return _plain(410, str(exc))
    quoted = file.name.replace('"', "").replace("\\", "")
    return Response(file.data, media_type=file.content_type, headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{quoted}"'})


def _local_path(value: str | None) -> str:
    """Where to go after signing in: a path of this app only (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def session_cookie(request: Request) -> Response:
    """GET /session/{ticket}?next=/page: the sign-in page sends the browser here once, to set the session
    cookie (HttpOnly, SameSite=Strict: no script and no other site can use it), then on to the page. Only
    from this app's own page: a link from elsewhere cannot sign a browser in to someone else's session."""
    if request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return HTMLResponse(page("Sign in", sessions.TICKET_REFUSED), status_code=403, headers=NO_STORE)
    def take() -> str:
        with _db().write() as session:
            return sessions.take_ticket(session, ticket=request.path_params["ticket"])

    try:
        token = await run_in_threadpool(take)
    except ValueError as exc:
        return HTMLResponse(page("Sign in", str(exc)), status_code=410, headers=NO_STORE)
    response = RedirectResponse(_local_path(request.query_params.get("next")), status_code=303, headers=NO_STORE)
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(sessions.COOKIE, sessions.cookie_value(token), httponly=True, samesite="strict", secure=secure, path="/")
    return response


async def health(request: Request) -> Response:
    """GET /healthz: 200 when the database answers, 503 otherwise (for a load balancer or monitor)."""
    def ping() -> None:
        with _db().read() as session:
            session.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except Exception as exc:  # any failure to reach the database is "unhealthy", never a stack trace
        log.warning("health check failed: %s", type(exc).__name__)
        return _plain(503, "database unreachable")
    return _plain(200, "ok")


async def logo(request: Request) -> Response:
    """GET /branding/logo: the library's logo (Administration → Settings), as messages and pages show it."""

    def look() -> tuple[bytes, str] | None:
        with _db().read() as session:
            return settings.branding(session).logo_image()

    found = await run_in_threadpool(look)
    if found is None:
        return _plain(404, "The library has no logo.")
    data, kind = found
    return Response(data, media_type=kind, headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


# --- surveys: GET shows the form (changes nothing), POST records the answers with the page's form token ---

SURVEY_MAX_BODY = 32 * 1024
ANONYMOUS_ANSWERS = limits.RateLimit(limit=10, window=600)  # per client: a desk tablet, not a script
THANKS = "Thank you: your answers are saved."


async def _fields(request: Request) -> dict[str, list[str]] | None:
    """Every posted field with all its values (check boxes); None for anything that is not a small form."""
    if int(request.headers.get("content-length") or 0) > SURVEY_MAX_BODY:
        return None
    if request.headers.get("content-type", "").split(";")[0].strip() not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    try:
        form = await request.form(max_files=0, max_fields=200, max_part_size=SURVEY_MAX_BODY)
    except Exception:  # a malformed form is refused with a message, never a stack trace
        return None
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return fields


def _survey_html(token: str, *, error: str = "", notice: str = "") -> tuple[str, int]:
    footer = _footer()
    with _db().read() as session:
        try:
            found = survey_responses.form(session, token=token)
        except ValueError as exc:
            return page("Survey", str(exc), footer=footer), 400
    return survey_form.page(found, action=f"/survey/{token}", error=error, notice=notice, footer=footer), 400 if error else 200


async def survey_page(request: Request) -> Response:
    """GET /survey/{token}: the survey, with the patron's earlier answers to change."""
    html_page, status = await run_in_threadpool(_survey_html, request.path_params["token"])
    return HTMLResponse(html_page, status_code=status, headers=NO_STORE)


async def survey_answer(request: Request) -> Response:
    """POST /survey/{token}: record the answers (a patron's replace their earlier ones); anonymous posts rate-limited."""
    token = request.path_params["token"]
    fields = await _fields(request)
    if fields is None:
        html_page, _ = await run_in_threadpool(_survey_html, token, error="The answers could not be read. Please send the form again.")
        return HTMLResponse(html_page, status_code=400, headers=NO_STORE)
    form_token = (fields.pop("form", None) or [None])[0]

    def save() -> bool:
        for attempt in (1, 2):  # two first answers of one patron at once: the second finds the first and changes it
            try:
                with _db().write() as session:
                    return survey_responses.answer(session, token=token, form_token=form_token, fields=fields).patron_id is None
            except IntegrityError:
                if attempt == 2:
                    raise
        return False

    try:
        if survey_tokens.read(token).patron_id is None and not ANONYMOUS_ANSWERS.allow(request.client.host if request.client else "?"):
            return HTMLResponse(page("Survey", "Too many answers from this device just now. Please try again in a few minutes."), status_code=429, headers=NO_STORE)
        anonymous = await run_in_threadpool(save)
    except ValueError as exc:
        html_page, _ = await run_in_threadpool(_survey_html, token, error=str(exc))
        return HTMLResponse(html_page, status_code=400, headers=NO_STORE)
    if anonymous:  # a fresh, empty form for the next person at the desk
        return HTMLResponse(page("Survey", THANKS, footer=await run_in_threadpool(_footer)), headers=NO_STORE)
    html_page, _ = await run_in_threadpool(_survey_html, token, notice=THANKS)
    return HTMLResponse(html_page, headers=NO_STORE)


def routes() -> list[Route]:
    return [
        Route("/survey/{token}", survey_page, methods=["GET"]),
        Route("/survey/{token}", survey_answer, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_now, methods=["POST"]),
        Route("/calendars/{token}.ics", calendar_feed, methods=["GET"]),
        Route("/downloads/{token}", download, methods=["GET"]),
        Route("/session/{ticket}", session_cookie, methods=["GET"]),
        Route("/branding/logo", logo, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ]
