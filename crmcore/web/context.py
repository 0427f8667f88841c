"""What every public route reads besides its own path: the database, the posted form, the client's address,
the page's language and the library's footer; and the headers every answer carries."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse

from crmcore import db as database
from crmcore.admin import settings
from crmcore.languages import catalogues

MAX_BODY = 4096
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def db():
    return database.shared()


def plain(status: int, message: str) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status, headers=NO_STORE)


def language(request: Request, patron_language: str | None = None, chosen: str | None = None) -> str:
    """The page's language: the one chosen on the page (a posted `lang`, else ?lang=), the patron's own, the
    browser's, else English (catalogues.for_page, as the preference page)."""
    return catalogues.for_page(chosen=chosen or request.query_params.get("lang"), patron=patron_language,
                               accept_language=request.headers.get("accept-language"))


def footer() -> list[str]:
    """The library's name and postal address, as at the foot of its messages."""
    with db().read() as session:
        brand = settings.branding(session)
    return [line for line in [brand.name, *brand.address.splitlines()] if line]


def client(request: Request) -> str:
    """The client's address as uvicorn gives it (behind a proxy, run uvicorn with --proxy-headers): never a
    header the client itself could write."""
    return request.client.host if request.client else "unknown"


async def posted(request: Request, *, limit: int = MAX_BODY, max_fields: int = 200) -> dict[str, list[str]] | None:
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


async def form(request: Request, *, limit: int = MAX_BODY) -> dict[str, str]:
    """The posted fields, one value each, small ones only; {} for anything that is not a small form."""
    if request.headers.get("content-type", "").split(";")[0].strip() in FORM_TYPES:
        return {k: v[0] for k, v in (await posted(request, limit=limit, max_fields=20) or {}).items()}
    if int(request.headers.get("content-length") or 0) > limit:
        return {}
    body = await request.body()  # no content type: the bare body RFC 8058 names
    return {k: v[0] for k, v in parse_qs(body[:limit].decode("utf-8", "replace")).items()}
