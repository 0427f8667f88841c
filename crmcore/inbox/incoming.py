"""Mail to the library's help address (CRM_HELP_ADDRESS), handed over by the inbound listener: a new request,
or — with a genuine reference in the subject or the reply headers — the next message of that request.

Nothing is lost and nothing is a crash: the text part is kept (an HTML-only message as its text; a message with
no text at all is kept as such and says so); attachments are not stored, each is named with its size in the
thread so staff can ask for it another way; an unknown or forged reference opens a new request and says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser

from sqlmodel import Session

from crmcore.inbox import references, tickets
from crmcore.models import Request, utcnow

MAX_MESSAGE = 32_000_000  # the listener accepts mail up to this size (a 20 MB attachment arrives, and is noted)
_ADDRESS = re.compile(r"[^@\s<>\"]{1,64}@[^@\s<>\"]{1,253}")
NO_TEXT = "(This message had no text: nothing but attachments or an empty body.)"


@dataclass
class Incoming:
    name: str | None
    email: str | None
    subject: str
    text: str
    remarks: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # In-Reply-To and References


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")
        if tag in ("br", "p", "div", "li", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style") and self.skip > 0

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The readable text of an HTML part (no markup, no scripts or styles)."""
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\n\s*\n+", "\n\n", "".join(parser.parts)).strip()


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{max(1, size // 1000)} KB"


def read(data: bytes) -> Incoming:
    """What a message says: sender, subject, its text, and remarks on what could not be kept."""
    mail: EmailMessage = message_from_bytes(data, policy=policy.default)
    senders = getaddresses([str(mail.get("From") or "")])
    name, address = senders[0] if senders else ("", "")  # the first of several From addresses answers
    # The sender's own address as their mail system wrote it: checked for shape only (no answer is lost to a
    # stricter rule than the mail system's).
    email = address.strip() if _ADDRESS.fullmatch(address.strip()) else None
    remarks = [] if email or not address else [f"The sender's address {address[:100]!r} is not a valid e-mail address: no reply can be sent to it."]
    text = ""
    body = mail.get_body(preferencelist=("plain", "html"))
    if body is not None:
        try:
            content = body.get_content()
        except (LookupError, ValueError):  # an unknown charset: the bytes as well as they decode
            content = (body.get_payload(decode=True) or b"").decode("utf-8", "replace")
        text = html_text(content) if body.get_content_type() == "text/html" else content
        if body.get_content_type() == "text/html":
            remarks.append("The message had no plain-text part: its HTML is kept as text.")
    text = text.strip()
    if not text:
        text = NO_TEXT
    skipped = []
    for part in mail.walk():
        if part is body or part.is_multipart():
            continue
        filename = part.get_filename()
        if filename or part.get_content_disposition() == "attachment" or not part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True) or b""
            skipped.append(f"{filename or part.get_content_type()} ({_size(len(payload))})")
    if skipped:
        remarks.append("Attachments are not kept; ask for them another way if they are needed: " + ", ".join(skipped) + ".")
    headers = [str(mail.get(h) or "") for h in ("In-Reply-To", "References")]
    return Incoming(name=name or None, email=email, subject=" ".join(str(mail.get("Subject") or "").split()), text=text, remarks=remarks, headers=headers)


def receive(session: Session, *, data: bytes, now: datetime | None = None) -> tuple[Request, str]:
    """File one message to the help address: (its request, what was done, in words for the Sent mail page)."""
    now = now or utcnow()
    found = read(data)
    request_id, forged = references.found_in(found.subject, *found.headers)
    request = session.get(Request, request_id) if request_id is not None else None
    remarks = list(found.remarks)
    if request is not None:
        tickets.add_incoming(session, request=request, body=found.text, remark=" ".join(remarks) or None, now=now)
        return request, f"added to request {references.make(request.id)}"
    if request_id is not None:
        remarks.insert(0, f"The message names request {references.make(request_id)}, which no longer exists: opened as a new request.")
    elif forged:
        remarks.insert(0, f"The message names a reference, {forged[:40]}, that the library never made: opened as a new request.")
    request = tickets.open_request(session, channel="email", subject=found.subject, body=found.text, requester_name=found.name, requester_email=found.email,
                                   remark=" ".join(remarks) or None, now=now)
    return request, f"opened request {references.make(request.id)}"
