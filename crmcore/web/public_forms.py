"""The public forms' routes: surveys, the sign-up form (and its confirmation link) and the request form. Each
page speaks the visitor's language (crmcore.web.context.language: the one chosen on the page, the patron's own
on a per-patron survey link, the browser's, else English); a form posts its language back in a hidden field,
so the answer speaks it too. Staff-written words (a survey's questions, topics, branches) stay as written."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from crmcore.inbox import form as inbox_form
from crmcore.inbox import topics as inbox_topics
from crmcore.languages.catalogues import N_, gettext, said
from crmcore.signups import form as signup_form
from crmcore.signups import prospects, snippet, spam, tokens
from crmcore.surveys import responses as survey_responses
from crmcore.surveys import tokens as survey_tokens
from crmcore.web import context, limits, survey_form
from crmcore.web.context import NO_STORE
from crmcore.web.pages import REQUEST_TITLE, page, request_form

# --- surveys: GET shows the form (changes nothing), POST records the answers with the page's form token ---

SURVEY_MAX_BODY = 32 * 1024
ANONYMOUS_ANSWERS = limits.RateLimit(limit=10, window=600)  # per client: a desk tablet, not a script
SURVEY = N_("Survey")
THANKS = N_("Thank you: your answers are saved.")
UNREADABLE = N_("The answers could not be read. Please send the form again.")
TOO_MANY_ANSWERS = N_("Too many answers from this device just now. Please try again in a few minutes.")


def _survey_html(request: Request, token: str, *, chosen: str | None = None, error: BaseException | None = None, notice: str = "") -> tuple[str, int]:
    footer = context.footer()
    here = f"/survey/{token}"
    with context.db().read() as session:
        lang = context.language(request, survey_responses.patron_language(session, token=token), chosen)
        try:
            found = survey_responses.form(session, token=token)
        except ValueError as exc:
            return page(gettext(lang, SURVEY), said(lang, exc), footer=footer, language=lang, switch=here), 400
    shown = survey_form.page(found, action=here, error=said(lang, error) if error else "", notice=gettext(lang, notice) if notice else "",
                             footer=footer, language=lang)
    return shown, 400 if error else 200


async def survey_page(request: Request) -> Response:
    """GET /survey/{token}: the survey, with the patron's earlier answers to change."""
    html_page, status = await run_in_threadpool(_survey_html, request, request.path_params["token"])
    return HTMLResponse(html_page, status_code=status, headers=NO_STORE)


async def survey_answer(request: Request) -> Response:
    """POST /survey/{token}: record the answers (a patron's replace their earlier ones); anonymous posts rate-limited."""
    token = request.path_params["token"]
    fields = await context.posted(request, limit=SURVEY_MAX_BODY)
    if fields is None:
        html_page, _ = await run_in_threadpool(lambda: _survey_html(request, token, error=ValueError(UNREADABLE)))
        return HTMLResponse(html_page, status_code=400, headers=NO_STORE)
    form_token = (fields.pop("form", None) or [None])[0]
    chosen = (fields.pop("lang", None) or [None])[0]

    def save() -> bool:
        for attempt in (1, 2):  # two first answers of one patron at once: the second finds the first and changes it
            try:
                with context.db().write() as session:
                    return survey_responses.answer(session, token=token, form_token=form_token, fields=fields).patron_id is None
            except IntegrityError:
                if attempt == 2:
                    raise
        return False

    try:
        if survey_tokens.read(token).patron_id is None and not ANONYMOUS_ANSWERS.allow(context.client(request)):
            lang = context.language(request, chosen=chosen)
            return HTMLResponse(page(gettext(lang, SURVEY), gettext(lang, TOO_MANY_ANSWERS), language=lang), status_code=429, headers=NO_STORE)
        anonymous = await run_in_threadpool(save)
    except ValueError as exc:
        refused = exc
        html_page, _ = await run_in_threadpool(lambda: _survey_html(request, token, chosen=chosen, error=refused))
        return HTMLResponse(html_page, status_code=400, headers=NO_STORE)
    if anonymous:  # a fresh, empty form for the next person at the desk
        lang = context.language(request, chosen=chosen)
        return HTMLResponse(page(gettext(lang, SURVEY), gettext(lang, THANKS), footer=await run_in_threadpool(context.footer), language=lang), headers=NO_STORE)
    html_page, _ = await run_in_threadpool(lambda: _survey_html(request, token, chosen=chosen, notice=THANKS))
    return HTMLResponse(html_page, headers=NO_STORE)


# --- requests from patrons and partners: the public form (crmcore.inbox.form) -----------------------

REQUEST_BODY = 32_768
NOT_FROM_FORM = N_("Your message was too long or not sent from the form. Open the request page and try again.")


def _request_page(lang: str, values: dict[str, str] | None = None, error: str | None = None) -> str:
    with context.db().read() as session:
        topics = [(t["id"], t["name"]) for t in inbox_topics.public_topics(session)]
    return request_form(topics=topics, token=inbox_form.make_token(), values=values, error=error, footer=context.footer(), language=lang)


async def request_page(request: Request) -> Response:
    """GET /request: the form to ask the library something (no sign-in, no script)."""
    return HTMLResponse(await run_in_threadpool(_request_page, context.language(request)), headers=NO_STORE)


async def request_send(request: Request) -> Response:
    """POST /request: a new request (its reference shown), or the form again with what was wrong and what was typed."""
    fields = await context.form(request, limit=REQUEST_BODY)
    lang = context.language(request, chosen=fields.get("lang"))
    if not fields:
        return HTMLResponse(page(gettext(lang, REQUEST_TITLE), gettext(lang, NOT_FROM_FORM), language=lang), status_code=400, headers=NO_STORE)
    client = context.client(request)

    def take() -> inbox_form.Outcome:
        with context.db().write() as session:
            return inbox_form.submit(session, fields=fields, client=client)

    try:
        outcome = await run_in_threadpool(take)
    except ValueError as exc:
        kept = {k: fields.get(k, "") for k in ("name", "email", "topic", "message")}
        return HTMLResponse(await run_in_threadpool(_request_page, lang, kept, said(lang, exc)), status_code=400, headers=NO_STORE)
    said_next = (gettext(lang, "Your reference is {reference}; it is in the subject of our answer.").format(reference=outcome.reference)
                 if outcome.reference else gettext(lang, "We will answer by e-mail."))
    return HTMLResponse(page(gettext(lang, "Thank you"), gettext(lang, "The library has your message."), said_next,
                             footer=await run_in_threadpool(context.footer), language=lang), headers=NO_STORE)


# --- sign-up forms for prospects (crmcore.signups) ---------------------------------------------------

SIGNUP_TITLE = N_("Sign up for library news")
SIGNUP_INTRO = N_("Get news from the library by email. We will send you a link to confirm first.")
CONFIRM_TITLE = N_("Confirm your sign-up")


def _signup_form(lang: str, *paragraphs: str, values: dict | None = None, status: int = 200) -> HTMLResponse:
    def build() -> str:
        with context.db().read() as session:
            branches = prospects.branch_choices(session)
        fields = snippet.fields_html(token=tokens.form_token(tokens.PAGE), branches=branches, values=values, language=lang)
        return page(gettext(lang, SIGNUP_TITLE), *paragraphs, fields_form=("/signup", fields), footer=context.footer(), language=lang, switch="/signup")

    return HTMLResponse(build(), status_code=status, headers=NO_STORE)


async def signup_page(request: Request) -> Response:
    """GET /signup: the form (a fresh signed form token in it); nothing changes."""
    lang = context.language(request)
    return await run_in_threadpool(_signup_form, lang, gettext(lang, SIGNUP_INTRO))


async def signup_post(request: Request) -> Response:
    """POST /signup (this app's form or the snippet on the library's website): checked, kept unconfirmed, and a
    confirmation link emailed in the form's language; refused with the reason (and the form again) otherwise."""
    posted = await context.posted(request, max_fields=30)
    if posted is None:
        lang = context.language(request)
        return await run_in_threadpool(lambda: _signup_form(lang, gettext(lang, tokens.NO_FORM_TOKEN), status=400))
    fields: dict = {k: v[-1] for k, v in posted.items() if k != "topics"} | {"topics": posted.get("topics", [])}
    lang = context.language(request, chosen=fields.get("lang"))
    client = context.client(request)
    try:
        email = await run_in_threadpool(lambda: signup_form.submit(context.db(), fields=fields, client=client, language=lang))
    except ValueError as exc:
        reason, status = said(lang, exc), 429 if str(exc) == spam.TOO_MANY else 400
        return await run_in_threadpool(lambda: _signup_form(lang, reason, values=fields, status=status))
    footer = await run_in_threadpool(context.footer)
    return HTMLResponse(page(gettext(lang, "Check your email"),
                             gettext(lang, "We sent a link to {email}. Open it and press Confirm to start getting our news.").format(email=email),
                             gettext(lang, "Nothing is sent until you confirm. The link works for 7 days."), footer=footer, language=lang), headers=NO_STORE)


async def signup_confirm(request: Request) -> Response:
    """GET /signup/confirm/{token}: what the sign-up asks for, and one Confirm button (link scanners open GETs);
    POST: the consent is recorded now, idempotent. In the language of the link (the form's) or the one chosen."""
    token, pressed = request.path_params["token"], request.method == "POST"
    lang = context.language(request, chosen=(await context.form(request)).get("lang") if pressed else None)

    def act() -> str:
        with (context.db().write() if pressed else context.db().read()) as session:
            found = prospects.confirm(session, token=token) if pressed else prospects.named(session, token=token)
            return prospects.topic_words(found.topics, lang)

    footer = await run_in_threadpool(context.footer)
    here = f"/signup/confirm/{token}"
    try:
        what = await run_in_threadpool(act)
    except ValueError as exc:
        return HTMLResponse(page(gettext(lang, CONFIRM_TITLE), said(lang, exc), footer=footer, language=lang), status_code=400, headers=NO_STORE)
    if pressed:
        return HTMLResponse(page(gettext(lang, "Thank you"), gettext(lang, "You will get emails from the library about {topics}.").format(topics=what),
                                 gettext(lang, "Every email has a link to unsubscribe."), footer=footer, language=lang), headers=NO_STORE)
    form = (here, {"lang": lang}, gettext(lang, "Confirm"))
    return HTMLResponse(page(gettext(lang, CONFIRM_TITLE), gettext(lang, "Get emails from the library about {topics}?").format(topics=what), form=form,
                             footer=footer, language=lang, switch=here), headers=NO_STORE)
