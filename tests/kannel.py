"""A real Kannel on loopback for the text-message tests: bearerbox with a `fake` SMSC, smsbox with a
sendsms user and an sms-service posting to the app's /sms/inbound, and Kannel's own fakesmsc as the phone
network (what it prints is what the phones received; started again to send a text in)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

import httpx
import pytest

from tests.campaign_fixtures import free_port
from tests.conftest import require_or_skip
from tests.web_server import serving

BEARERBOX, SMSBOX, FAKESMSC = "/usr/sbin/bearerbox", "/usr/sbin/smsbox", "/usr/lib/kannel/test/fakesmsc"
USER, PASSWORD, SECRET, SHORT_CODE = "liaison", "kannel-test-pw", "sms-test-secret", "12345"
# fakesmsc's protocol is a line per text: a text with a line break arrives as a text and its continuations.
_GOT = re.compile(r"Got message \d+: <(.*?)>(?=\n\d{4}-\d\d-\d\d |\n?\Z)", re.S)
_HEAD = re.compile(r"(\S+) (\S+) (text|ucs-2|data) (.*)", re.S)
_PART = re.compile(r"(\S+) (\S+) udh (\S+) data (.*)", re.S)

CONF = """\
group = core
admin-port = {admin}
admin-password = {password}
smsbox-port = {smsbox}
admin-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-level = 1
log-file = "{dir}/bearerbox.log"
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = FAKE
host = 127.0.0.1
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-level = 1
log-file = "{dir}/smsbox.log"

group = sendsms-user
username = {user}
password = {password}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
post-url = "http://127.0.0.1:{app}/sms/inbound?secret={secret}&from=%p&to=%P"
omit-empty = true
max-messages = 1
"""


@dataclass
class Kannel:
    folder: Path
    ports: dict[str, int]
    phones: subprocess.Popen | None = None
    runs: list[Path] = field(default_factory=list)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sendsms']}/cgi-bin/sendsms"

    @property
    def env(self) -> dict[str, str]:
        return {"CRM_SMS_URL": self.sendsms_url, "CRM_SMS_USER": USER, "CRM_SMS_PASSWORD": PASSWORD, "CRM_SMS_FROM": SHORT_CODE,
                "CRM_SMS_SECRET": SECRET, "CRM_SMS_CALLBACK_URL": f"http://127.0.0.1:{self.ports['app']}"}

    def start_phones(self, *texts: str) -> None:
        """(Re)start fakesmsc; each of `texts` ("+15551234567 HELP") is sent in once."""
        self.stop_phones()
        out = self.folder / f"fakesmsc-{len(self.runs)}.out"
        self.runs.append(out)
        args = [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["smsc"]), "-i", "0.2", "-m", str(len(texts))]
        args += [f"{t.split(' ', 1)[0]} {SHORT_CODE} text {t.split(' ', 1)[1]}" for t in texts] or ["1 2 text unused"]
        self.phones = subprocess.Popen(args, stdout=out.open("wb"), stderr=subprocess.STDOUT)
        _wait(lambda: "online" in self.status(), "the fake SMSC did not connect")

    def stop_phones(self) -> None:
        if self.phones is not None:
            self.phones.terminate()
            self.phones.wait(timeout=10)
            self.phones = None
            _wait(lambda: "online" not in self.status(), "the fake SMSC did not disconnect")

    def status(self) -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports['admin']}/status.txt", params={"password": PASSWORD}, timeout=2).text
        except httpx.HTTPError:
            return ""

    def received(self) -> list[tuple[str, str, str]]:
        """Every text the phones received: (sender, to, text); a text sent in parts (a UCS-2 text's, whose
        header says its place) as the phone joins it again."""
        got = []
        parts: dict[tuple[str, str, int], list[bytes]] = {}
        for out in self.runs:
            for line in _GOT.findall(out.read_text("utf-8", "replace")):
                if (joined := _PART.fullmatch(line)) is not None:
                    sender, to, udh, data = joined.groups()
                    header = unquote_to_bytes(udh)  # 05 00 03 <reference> <parts> <this part>
                    key = (sender, to, header[3])
                    parts.setdefault(key, []).append(unquote_to_bytes(data.replace("+", "%20")))
                    if header[5] == header[4]:
                        got.append((sender, to, b"".join(parts.pop(key)).decode("utf-16-be")))
                    continue
                head = _HEAD.fullmatch(line)
                if head is None and got:
                    got[-1] = (*got[-1][:2], f"{got[-1][2]}\n{line}")
                elif head is not None:
                    sender, to, kind, body = head.groups()
                    got.append((sender, to, unquote_to_bytes(body.replace("+", "%20")).decode("utf-16-be") if kind == "ucs-2" else body))
        return got

    def wait_for(self, count: int, timeout: float = 20) -> list[tuple[str, str, str]]:
        _wait(lambda: len(self.received()) >= count, f"the phones did not receive {count} text(s)", timeout=timeout)
        return self.received()


def _wait(check, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(0.1)


def start_kannel(folder: Path, *, app_port: int) -> tuple[Kannel, list[subprocess.Popen]]:
    ports = {name: free_port() for name in ("admin", "smsbox", "smsc", "sendsms")} | {"app": app_port}
    conf = folder / "kannel.conf"
    conf.write_text(CONF.format(dir=folder, user=USER, password=PASSWORD, secret=SECRET, **ports))
    boxes = [subprocess.Popen([BEARERBOX, str(conf)], stdout=(folder / "bearerbox.out").open("wb"), stderr=subprocess.STDOUT)]
    kannel = Kannel(folder=folder, ports=ports)
    _wait(lambda: "Status" in kannel.status() or "bearerbox" in kannel.status().lower(), "bearerbox did not start")
    boxes.append(subprocess.Popen([SMSBOX, str(conf)], stdout=(folder / "smsbox.out").open("wb"), stderr=subprocess.STDOUT))
    _wait(lambda: _open(ports["sendsms"]), "smsbox did not start")
    return kannel, boxes


def _open(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except httpx.HTTPError:
        return False


@pytest.fixture
def kannel(tmp_path, monkeypatch):
    """A running Kannel (the phones listening) whose sms-service calls the app on `kannel.ports['app']`; the
    test's CRM_SMS_* point at it."""
    require_or_skip(all(os.access(p, os.X_OK) for p in (BEARERBOX, SMSBOX, FAKESMSC)), "Kannel is not installed (apt-get install kannel kannel-extras)")
    folder = tmp_path / "kannel"
    folder.mkdir()
    kannel, boxes = start_kannel(folder, app_port=free_port())
    for key, value in kannel.env.items():
        monkeypatch.setenv(key, value)
    kannel.start_phones()
    yield kannel
    if kannel.phones is not None:
        kannel.phones.terminate()
    for box in reversed(boxes):
        box.terminate()
    for proc in [*boxes, kannel.phones]:
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def texts_web(db, kannel):
    """The app's HTTP server on the port Kannel calls, with the same CRM_SMS_* settings and database."""
    with serving(db, port=kannel.ports["app"]) as base:
        yield base
