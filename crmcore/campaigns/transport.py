"""Where messages go: one SMTP connection per batch (STARTTLS and login when configured), or the outbox.

Every SMTP outcome becomes a SendFailure that says what to do next: retry later (4xx), give up (5xx,
a hard bounce when the enhanced status is 5.1.x), or "ambiguous" when the connection broke during the
transaction and nobody can know whether the server took the message.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Protocol

from crmcore.campaigns import outbox
from crmcore.campaigns.mime import Mail

TIMEOUT_SECONDS = 60
_HARD_BOUNCE = re.compile(r"\b5\.1\.\d{1,3}\b")


class SendFailure(Exception):
    """`outage`: the way out is down (no mail server, an outbox that cannot be written): nothing was sent,
    the message and the rest of the batch wait for the fault to go."""

    def __init__(self, text: str, *, code: int | None = None, ambiguous: bool = False, outage: bool = False):
        super().__init__(text if code is None else f"{code} {text}")
        self.code, self.ambiguous, self.outage = code, ambiguous, outage

    @property
    def temporary(self) -> bool:
        return self.code is not None and 400 <= self.code < 500

    @property
    def hard_bounce(self) -> bool:
        return self.code is not None and 500 <= self.code < 600 and bool(_HARD_BOUNCE.search(str(self)))


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


class Sender(Protocol):
    def send(self, mail: Mail) -> None: ...


class Transport(Protocol):
    def connect(self): ...


@dataclass
class _SmtpSender:
    smtp: smtplib.SMTP

    def send(self, mail: Mail) -> None:
        try:
            options: list[str] = []
            if mail.international:
                if not self.smtp.has_extn("smtputf8"):
                    raise SendFailure("the mail server does not accept international addresses (no SMTPUTF8)")
                options.append("SMTPUTF8")
            self.smtp.sendmail(mail.sender, [mail.to], mail.data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise SendFailure(_text(text), code=code) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise SendFailure(_text(exc.smtp_error), code=exc.smtp_code) from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing the connection mid-transaction
                raise SendFailure(_text(exc.smtp_error), code=421, ambiguous=True) from None
            raise SendFailure(_text(exc.smtp_error), code=exc.smtp_code) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendFailure(f"connection lost during the transaction ({type(exc).__name__})", ambiguous=True) from None


@dataclass
class SmtpTransport:
    host: str
    port: int = 587
    user: str | None = None
    password: str | None = None
    starttls: bool = False

    def _open(self) -> smtplib.SMTP:
        smtp = None
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS)
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
            return smtp
        except smtplib.SMTPResponseException as exc:
            if smtp is not None:
                smtp.close()
            raise SendFailure(f"mail server {self.host}:{self.port}: {_text(exc.smtp_error)}", code=exc.smtp_code, outage=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                smtp.close()
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise SendFailure(f"the mail server {self.host}:{self.port} cannot be reached ({reason})", outage=True) from None

    @contextmanager
    def connect(self) -> Iterator[_SmtpSender]:
        smtp = self._open()
        try:
            yield _SmtpSender(smtp)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _outbox_fault(exc: OSError) -> SendFailure:
    return SendFailure(f"the outbox folder {outbox.directory()} cannot be written ({exc.strerror or type(exc).__name__})", outage=True)


class _OutboxSender:
    def send(self, mail: Mail) -> None:
        try:
            outbox.write(mail)
        except OSError as exc:  # written atomically: a failed write left nothing behind, nothing was "sent"
            raise _outbox_fault(exc) from None


class OutboxTransport:
    @contextmanager
    def connect(self) -> Iterator[_OutboxSender]:
        try:
            outbox.writable()
        except OSError as exc:
            raise _outbox_fault(exc) from None
        yield _OutboxSender()
