"""The public routes: each parses the request, calls crmcore, answers. A GET never changes anything (link
scanners open links), but for a one-use download, the sign-in ticket (neither is ever in a message) and
Kannel's delivery reports (its dlr-url is a GET, with the shared secret); every POST checks its token or secret. Database work runs in a worker thread, never on the event loop
that Streamlit's own sessions share."""

from __future__ import annotations

import hmac
import logging
from urllib.parse import parse_qs

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from crmcore import db as database
from crmcore.admin import config, sessions, settings
from crmcore.campaigns import unsubscribe
from crmcore.inbox import form as inbox_form
from crmcore.inbox import topics as inbox_topics
from crmcore.inbox.form import make_token as request_form_token
from crmcore.languages import catalogues
from crmcore.languages.catalogues import gettext
from crmcore.outreach import calendar
from crmcore.privacy import downloads
from crmcore.signups import form as signup_form
from crmcore.signups import prospects, snippet, spam, tokens
from crmcore.surveys import responses as survey_responses
from crmcore.surveys import tokens as survey_tokens
from crmcore.texts import delivery, keywords
from crmcore.web import limits, survey_form
from crmcore.web.pages import page, request_form

log = logging.getLogger("liaison.web")
ONE_CLICK = "List-Unsubscribe=One-Click"
MAX_BODY = 4096
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _db():
    return database.shared()


def _plain(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=NO_STORE)


async def unsubscribe_page(request: Request) -> Response:
    """GET /unsubscribe/{token}: what the link stops, and one button; nothing changes until it is pressed. In the
    language chosen on the page (?lang=), else the patron's own, else the browser's (Accept-Language), else English."""
    token = request.path_params["token"]

    def look() -> unsubscribe.Subject:
        with _db().read() as session:
            return unsubscribe.subject(session, token)

    footer = await run_in_threadpool(_footer)
    here = f"/unsubscribe/{token}"
    try:
        found = await run_in_threadpool(look)
    except ValueError as exc:
        lang = _language(request)
        return HTMLResponse(page(gettext(lang, "Unsubscribe"), gettext(lang, str(exc)), footer=footer, language=lang, switch=here), status_code=400, headers=NO_STORE)
    lang = _language(request, found.language)
    form = (here, {"List-Unsubscribe": "One-Click", "from": "page", "lang": lang}, gettext(lang, "Unsubscribe"))
    question = gettext(lang, "Stop {what} from the library?").format(what=found.described_in(lang))
    return HTMLResponse(page(gettext(lang, "Unsubscribe"), question, form=form, footer=footer, language=lang, switch=here), headers=NO_STORE)


def _language(request: Request, patron_language: str | None = None, chosen: str | None = None) -> str:
    """The page's language: the one chosen on the page, the patron's own, the browser's, else English."""
    return catalogues.choose(chosen or request.query_params.get("lang"), patron_language, catalogues.negotiate(request.headers.get("accept-language")))


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
        if fields.get("from") == "page":
            lang = _language(request, chosen=fields.get("lang"))
            return HTMLResponse(page(gettext(lang, "Unsubscribe"), gettext(lang, str(exc)), footer=await run_in_threadpool(_footer), language=lang), status_code=400, headers=NO_STORE)
        return _plain(400, str(exc))
    if fields.get("from") == "page":
        lang = _language(request, found.language, chosen=fields.get("lang"))
        return HTMLResponse(page(gettext(lang, "Unsubscribed"), gettext(lang, "You will get no more {what} from the library.").format(what=found.described_in(lang)),
                                 gettext(lang, "You can change this at any time from the preferences link in any of our messages."),
                                 footer=await run_in_threadpool(_footer), language=lang), headers=NO_STORE)
    return _plain(200, "Unsubscribed.")


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _client(request: Request) -> str:
    """The client's address as uvicorn gives it (behind a proxy, run uvicorn with --proxy-headers): never a
    header the client itself could write."""
    return request.client.host if request.client else "unknown"


async def _posted(request: Request, *, limit: int = MAX_BODY, max_fields: int = 200) -> dict[str, list[str]] | None:
    """Every posted field with all its values (check boxes); None for anything that is not a small form."""
    if int(request.headers.get("content-length") or 0) > limit:
        return None
    if request.headers.get("content-type", "").split(";")[0].strip() not in FORM_TYPES:
        return None
    try:
        form = await request.form(max_files=0, max_fields=max_fields, max_part_size=limit)
    except Exception:  # a malformed form is refused with a message, never a stack trace
        return None
    fields: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.setdefault(key, []).append(value)
    return fields


async def _form(request: Request, *, limit: int = MAX_BODY) -> dict[str, str]:
    """The posted fields, one value each, small ones only; {} for anything that is not a small form."""
    if request.headers.get("content-type", "").split(";")[0].strip() in FORM_TYPES:
        return {k: v[0] for k, v in (await _posted(request, limit=limit, max_fields=20) or {}).items()}
    if int(request.headers.get("content-length") or 0) > limit:
        return {}
    body = await request.body()  # no content type: the bare body RFC 8058 names
    return {k: v[0] for k, v in parse_qs(body[:limit].decode("utf-8", "replace")).items()}


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
    fields = await _posted(request, limit=SURVEY_MAX_BODY)
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
        if survey_tokens.read(token).patron_id is None and not ANONYMOUS_ANSWERS.allow(_client(request)):
            return HTMLResponse(page("Survey", "Too many answers from this device just now. Please try again in a few minutes."), status_code=429, headers=NO_STORE)
        anonymous = await run_in_threadpool(save)
    except ValueError as exc:
        html_page, _ = await run_in_threadpool(_survey_html, token, error=str(exc))
        return HTMLResponse(html_page, status_code=400, headers=NO_STORE)
    if anonymous:  # a fresh, empty form for the next person at the desk
        return HTMLResponse(page("Survey", THANKS, footer=await run_in_threadpool(_footer)), headers=NO_STORE)
    html_page, _ = await run_in_threadpool(_survey_html, token, notice=THANKS)
    return HTMLResponse(html_page, headers=NO_STORE)
# --- requests from patrons and partners: the public form (crmcore.inbox.form) -----------------------
REQUEST_BODY = 32_768


def _request_page(token: str | None = None, values: dict[str, str] | None = None, error: str | None = None) -> str:
    with _db().read() as session:
        topics = [(t["id"], t["name"]) for t in inbox_topics.public_topics(session)]
    return request_form(topics=topics, token=token or request_form_token(), values=values, error=error, footer=_footer())


async def request_page(request: Request) -> Response:
    """GET /request: the form to ask the library something (no sign-in, no script)."""
    return HTMLResponse(await run_in_threadpool(_request_page), headers=NO_STORE)


async def request_send(request: Request) -> Response:
    """POST /request: a new request (its reference shown), or the form again with what was wrong and what was typed."""
    fields = await _form(request, limit=REQUEST_BODY)
    if not fields:
        return HTMLResponse(page("Ask the library", "Your message was too long or not sent from the form. Open the request page and try again."), status_code=400, headers=NO_STORE)
    client = _client(request)

    def take() -> inbox_form.Outcome:
        with _db().write() as session:
            return inbox_form.submit(session, fields=fields, client=client)

    try:
        outcome = await run_in_threadpool(take)
    except ValueError as exc:
        kept = {k: fields.get(k, "") for k in ("name", "email", "topic", "message")}
        return HTMLResponse(await run_in_threadpool(_request_page, None, kept, str(exc)), status_code=400, headers=NO_STORE)
    said = f"Your reference is {outcome.reference}; it is in the subject of our answer." if outcome.reference else "We will answer by e-mail."
    return HTMLResponse(page("Thank you", "The library has your message.", said, footer=await run_in_threadpool(_footer)), headers=NO_STORE)


# --- sign-up forms for prospects (crmcore.signups) ---------------------------------------------------

SIGNUP_TITLE = "Sign up for library news"


def _signup_form(*paragraphs: str, values: dict | None = None, status: int = 200) -> HTMLResponse:
    def build() -> str:
        with _db().read() as session:
            branches = prospects.branch_choices(session)
        fields = snippet.fields_html(token=tokens.form_token(tokens.PAGE), branches=branches, values=values)
        return page(SIGNUP_TITLE, *paragraphs, fields_form=("/signup", fields), footer=_footer())

    return HTMLResponse(build(), status_code=status, headers=NO_STORE)


async def signup_page(request: Request) -> Response:
    """GET /signup: the form (a fresh signed form token in it); nothing changes."""
    return await run_in_threadpool(_signup_form, "Get news from the library by email. We will send you a link to confirm first.")


async def signup_post(request: Request) -> Response:
    """POST /signup (this app's form or the snippet on the library's website): checked, kept unconfirmed, and a
    confirmation link emailed; refused with the reason (and the form again) otherwise."""
    posted = await _posted(request, max_fields=30)
    if posted is None:
        return await run_in_threadpool(_signup_form, tokens.NO_FORM_TOKEN, status=400)
    fields: dict = {k: v[-1] for k, v in posted.items() if k != "topics"} | {"topics": posted.get("topics", [])}
    client = _client(request)
    try:
        email = await run_in_threadpool(lambda: signup_form.submit(_db(), fields=fields, client=client))
    except ValueError as exc:
        reason = str(exc)
        return await run_in_threadpool(lambda: _signup_form(reason, values=fields, status=429 if reason == spam.TOO_MANY else 400))
    footer = await run_in_threadpool(_footer)
    return HTMLResponse(page("Check your email", f"We sent a link to {email}. Open it and press Confirm to start getting our news.",
                             "Nothing is sent until you confirm. The link works for 7 days.", footer=footer), headers=NO_STORE)


async def signup_confirm(request: Request) -> Response:
    """GET /signup/confirm/{token}: what the sign-up asks for, and one Confirm button (link scanners open GETs);
    POST: the consent is recorded now, idempotent."""
    token, pressed = request.path_params["token"], request.method == "POST"

    def act() -> str:
        with (_db().write() if pressed else _db().read()) as session:
            found = prospects.confirm(session, token=token) if pressed else prospects.named(session, token=token)
            return prospects.topic_words(found.topics)

    footer = await run_in_threadpool(_footer)
    try:
        what = await run_in_threadpool(act)
    except ValueError as exc:
        return HTMLResponse(page("Confirm your sign-up", str(exc), footer=footer), status_code=400, headers=NO_STORE)
    if pressed:
        return HTMLResponse(page("Thank you", f"You will get emails from the library about {what}.",
                                 "Every email has a link to unsubscribe.", footer=footer), headers=NO_STORE)
    form = (f"/signup/confirm/{token}", {}, "Confirm")
    return HTMLResponse(page("Confirm your sign-up", f"Get emails from the library about {what}?", form=form, footer=footer), headers=NO_STORE)
def _sms_allowed(request: Request) -> bool:
    """Kannel's calls carry the shared secret CRM_SMS_SECRET in the address; without one configured, none is allowed."""
    secret = config.get("CRM_SMS_SECRET")
    return bool(secret) and hmac.compare_digest(request.query_params.get("secret", "").encode(), secret.encode())


async def sms_inbound(request: Request) -> Response:
    """POST /sms/inbound?secret=…&from=%p (Kannel's sms-service post-url, the text as the body): keywords; the
    answer's body is the reply Kannel texts back (empty: none)."""
    if not _sms_allowed(request):
        return _plain(403, "Not allowed.")
    body = (await request.body())[:MAX_BODY].decode("utf-8", "replace")
    sender = request.query_params.get("from", "")

    def act() -> str:
        with _db().write() as session:
            return keywords.receive(session, sender=sender, text=body)

    return PlainTextResponse(await run_in_threadpool(act), headers=NO_STORE)


async def sms_dlr(request: Request) -> Response:
    """GET or POST /sms/dlr?secret=…&message=ID&type=%d: Kannel's delivery report for one text (Kannel calls
    its dlr-url with GET; the secret makes it Kannel's)."""
    if not _sms_allowed(request):
        return _plain(403, "Not allowed.")
    try:
        message_id, kind = int(request.query_params.get("message", "")), int(request.query_params.get("type", ""))
    except ValueError:
        return _plain(400, "A delivery report names its message and type as whole numbers.")

    def act() -> str:
        with _db().write() as session:
            return delivery.report(session, message_id=message_id, kind=kind)

    try:
        return _plain(200, await run_in_threadpool(act))
    except (LookupError, ValueError) as exc:
        return _plain(404 if isinstance(exc, LookupError) else 400, str(exc))


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
