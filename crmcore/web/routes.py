"""The public routes: each parses the request, calls crmcore, answers. A GET never changes anything (link
scanners open links), but for a one-use download, the sign-in ticket (neither is ever in a message) and
Kannel's delivery reports (its dlr-url is a GET, with the shared secret); every POST checks its token or secret. Database work runs in a worker thread, never on the event loop
that Streamlit's own sessions share."""

from __future__ import annotations

import hmac
import logging

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from crmcore.admin import config, sessions, settings
from crmcore.campaigns import unsubscribe
from crmcore.languages.catalogues import gettext, said
from crmcore.outreach import calendar
from crmcore.privacy import downloads
from crmcore.texts import delivery, keywords
from crmcore.web import context
from crmcore.web.context import MAX_BODY, NO_STORE
from crmcore.web.pages import page
from crmcore.web.public_forms import request_page, request_send, signup_confirm, signup_page, signup_post, survey_answer, survey_page

log = logging.getLogger("liaison.web")
ONE_CLICK = "List-Unsubscribe=One-Click"


async def unsubscribe_page(request: Request) -> Response:
    """GET /unsubscribe/{token}: what the link stops, and one button; nothing changes until it is pressed. In the
    language chosen on the page (?lang=), else the patron's own, else the browser's (Accept-Language), else English."""
    token = request.path_params["token"]

    def look() -> unsubscribe.Subject:
        with context.db().read() as session:
            return unsubscribe.subject(session, token)

    footer = await run_in_threadpool(context.footer)
    here = f"/unsubscribe/{token}"
    try:
        found = await run_in_threadpool(look)
    except ValueError as exc:
        lang = context.language(request)
        return HTMLResponse(page(gettext(lang, "Unsubscribe"), said(lang, exc), footer=footer, language=lang, switch=here), status_code=400, headers=NO_STORE)
    lang = context.language(request, found.language)
    form = (here, {"List-Unsubscribe": "One-Click", "from": "page", "lang": lang}, gettext(lang, "Unsubscribe"))
    question = gettext(lang, "Stop {what} from the library?").format(what=found.described_in(lang))
    return HTMLResponse(page(gettext(lang, "Unsubscribe"), question, form=form, footer=footer, language=lang, switch=here), headers=NO_STORE)


async def unsubscribe_now(request: Request) -> Response:
    """POST /unsubscribe/{token} (RFC 8058): the body must be List-Unsubscribe=One-Click, form-encoded or
    multipart/form-data as mail providers send it; idempotent."""
    fields = await context.form(request)
    if fields.get("List-Unsubscribe") != "One-Click":
        return context.plain(400, f"A one-click unsubscribe is a POST whose body is {ONE_CLICK}.")
    def withdraw() -> unsubscribe.Subject:
        with context.db().write() as session:
            return unsubscribe.withdraw(session, token=request.path_params["token"], source="one-click")[0]

    try:
        found = await run_in_threadpool(withdraw)
    except ValueError as exc:
        if fields.get("from") == "page":
            lang = context.language(request, chosen=fields.get("lang"))
            return HTMLResponse(page(gettext(lang, "Unsubscribe"), said(lang, exc), footer=await run_in_threadpool(context.footer), language=lang), status_code=400, headers=NO_STORE)
        return context.plain(400, str(exc))
    if fields.get("from") == "page":
        lang = context.language(request, found.language, chosen=fields.get("lang"))
        return HTMLResponse(page(gettext(lang, "Unsubscribed"), gettext(lang, "You will get no more {what} from the library.").format(what=found.described_in(lang)),
                                 gettext(lang, "You can change this at any time from the preferences link in any of our messages."),
                                 footer=await run_in_threadpool(context.footer), language=lang), headers=NO_STORE)
    return context.plain(200, "Unsubscribed.")


async def calendar_feed(request: Request) -> Response:
    """GET /calendars/{token}.ics: a staff member's subscribed calendar, as it is now."""
    def build() -> bytes | None:
        with context.db().read() as session:
            return calendar.feed(session, token=request.path_params["token"])

    content = await run_in_threadpool(build)
    if content is None:
        return context.plain(404, "No calendar at this address: the link was reset or stopped.")
    return Response(content, media_type="text/calendar", headers=NO_STORE)


async def download(request: Request) -> Response:
    """GET /downloads/{token}: a file holding personal data, once, within a minute of being offered."""
    def take() -> downloads.File:
        with context.db().write() as session:
            return downloads.take(session, token=request.path_params["token"])

    try:
        file = await run_in_threadpool(take)
    except ValueError as exc:
        return context.plain(410, str(exc))
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
        with context.db().write() as session:
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
        with context.db().read() as session:
            session.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(ping)
    except Exception as exc:  # any failure to reach the database is "unhealthy", never a stack trace
        log.warning("health check failed: %s", type(exc).__name__)
        return context.plain(503, "database unreachable")
    return context.plain(200, "ok")


async def logo(request: Request) -> Response:
    """GET /branding/logo: the library's logo (Administration → Settings), as messages and pages show it."""

    def look() -> tuple[bytes, str] | None:
        with context.db().read() as session:
            return settings.branding(session).logo_image()

    found = await run_in_threadpool(look)
    if found is None:
        return context.plain(404, "The library has no logo.")
    data, kind = found
    return Response(data, media_type=kind, headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


def _sms_allowed(request: Request) -> bool:
    """Kannel's calls carry the shared secret CRM_SMS_SECRET in the address; without one configured, none is allowed."""
    secret = config.get("CRM_SMS_SECRET")
    return bool(secret) and hmac.compare_digest(request.query_params.get("secret", "").encode(), secret.encode())


async def sms_inbound(request: Request) -> Response:
    """POST /sms/inbound?secret=…&from=%p (Kannel's sms-service post-url, the text as the body): keywords; the
    answer's body is the reply Kannel texts back (empty: none)."""
    if not _sms_allowed(request):
        return context.plain(403, "Not allowed.")
    body = (await request.body())[:MAX_BODY].decode("utf-8", "replace")
    sender = request.query_params.get("from", "")

    def act() -> str:
        with context.db().write() as session:
            return keywords.receive(session, sender=sender, text=body)

    return PlainTextResponse(await run_in_threadpool(act), headers=NO_STORE)


async def sms_dlr(request: Request) -> Response:
    """GET or POST /sms/dlr?secret=…&message=ID&type=%d: Kannel's delivery report for one text (Kannel calls
    its dlr-url with GET; the secret makes it Kannel's)."""
    if not _sms_allowed(request):
        return context.plain(403, "Not allowed.")
    try:
        message_id, kind = int(request.query_params.get("message", "")), int(request.query_params.get("type", ""))
    except ValueError:
        return context.plain(400, "A delivery report names its message and type as whole numbers.")

    def act() -> str:
        with context.db().write() as session:
            return delivery.report(session, message_id=message_id, kind=kind)

    try:
        return context.plain(200, await run_in_threadpool(act))
    except (LookupError, ValueError) as exc:
        return context.plain(404 if isinstance(exc, LookupError) else 400, str(exc))


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
        Route("/request", request_page, methods=["GET"]),
        Route("/request", request_send, methods=["POST"]),
        Route("/signup", signup_page, methods=["GET"]),
        Route("/signup", signup_post, methods=["POST"]),
        Route("/signup/confirm/{token}", signup_confirm, methods=["GET", "POST"]),
        Route("/sms/inbound", sms_inbound, methods=["POST"]),
        Route("/sms/dlr", sms_dlr, methods=["GET", "POST"]),
    ]
