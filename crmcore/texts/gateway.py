"""Where texts go: Kannel's HTTP sendsms interface (one kept-alive connection per batch), or the outbox.

With CRM_SMS_URL unset, each text is written to data/outbox/sms/ (the demo works offline, the Sent
mail page shows them). Kannel's answers become the campaign sender's SendFailure: a refused connection
is an outage (nothing went out, the batch waits), a connection lost after the request was sent is
ambiguous (it may have been taken: "unknown", never resent), 503 and other 5xx are temporary (retried),
any other refusal (4xx: a bad number, wrong credentials) is final.
"""

from __future__ import annotations

import json
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterator

import httpx

from crmcore import files
from crmcore.admin import config
from crmcore.campaigns import outbox
from crmcore.campaigns.transport import SendFailure
from crmcore.texts.segments import is_gsm7

TIMEOUT_SECONDS = 30
# SMTP-like codes for SendFailure: temporary (retried) and final.
TEMPORARY, FINAL = 451, 554


@dataclass(frozen=True)
class Text:
    to: str  # E.164
    body: str
    name: str  # unique per message: the outbox file's name
    dlr_url: str | None = None


def outbox_directory() -> Path:
    return outbox.directory() / "sms"


def sendsms_params(text: Text, *, user: str, password: str, sender: str | None) -> dict[str, str]:
    """The sendsms query for one text (also what the benchmark's bare loop posts)."""
    params = {"username": user, "password": password, "to": text.to, "text": text.body, "charset": "UTF-8", "coding": "0" if is_gsm7(text.body) else "2"}
    if sender:
        params["from"] = sender
    if text.dlr_url:
        params.update({"dlr-mask": "31", "dlr-url": text.dlr_url})
    return params


@dataclass
class _KannelSender:
    client: httpx.Client
    url: str
    user: str
    password: str
    sender: str | None

    def send(self, text: Text) -> None:
        try:
            answer = self.client.get(self.url, params=sendsms_params(text, user=self.user, password=self.password, sender=self.sender))
        except httpx.ConnectError as exc:  # nothing was sent
            raise SendFailure(f"the text gateway {self.url} cannot be reached ({type(exc).__name__})", outage=True) from None
        except httpx.HTTPError as exc:
            raise SendFailure(f"the connection to the text gateway broke during the request ({type(exc).__name__})", ambiguous=True) from None
        if answer.status_code in (200, 202):
            return
        reason = f"the text gateway answered {answer.status_code}: {answer.text.strip()[:200]}"
        raise SendFailure(reason, code=TEMPORARY if answer.status_code >= 500 else FINAL)


@cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process (an https sendsms address): building one reads the CA bundle, 75 ms a batch."""
    return ssl.create_default_context()


@dataclass
class KannelTransport:
    url: str
    user: str
    password: str
    sender: str | None = None

    @contextmanager
    def connect(self) -> Iterator[_KannelSender]:
        with httpx.Client(timeout=TIMEOUT_SECONDS, verify=_tls()) as client:
            yield _KannelSender(client=client, url=self.url, user=self.user, password=self.password, sender=self.sender)


class _OutboxSender:
    def send(self, text: Text) -> None:
        data = json.dumps({"to": text.to, "text": text.body}, ensure_ascii=False, indent=1).encode("utf-8")
        try:
            files.write_private(files.private_dir(outbox_directory()) / f"{text.name}.json", data)
        except OSError as exc:
            raise SendFailure(f"the text outbox {outbox_directory()} cannot be written ({exc.strerror or type(exc).__name__})", outage=True) from None


class OutboxTransport:
    @contextmanager
    def connect(self) -> Iterator[_OutboxSender]:
        yield _OutboxSender()


def transport() -> KannelTransport | OutboxTransport:
    """Kannel when CRM_SMS_URL is set, else the outbox folder data/outbox/sms/."""
    url = config.get("CRM_SMS_URL")
    if not url:
        return OutboxTransport()
    return KannelTransport(url=url, user=config.get("CRM_SMS_USER", ""), password=config.get("CRM_SMS_PASSWORD", ""), sender=config.get("CRM_SMS_FROM"))
