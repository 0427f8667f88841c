"""The hand-built campaign message, parsed back by Python's `email` package: every part and header as meant."""

from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes, policy

from crmcore.campaigns import mime

WHEN = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
LONG_URL = "https://library.example.org/preferences?token=" + "abcdefghij" * 12


def built(**changes) -> mime.Mail:
    fields = {
        "mail_from": "City Library <news@library.example.org>",
        "to": "ann@example.org",
        "subject": "New at the library, Ann",
        "text": "Dear Ann,\n\n1 + 1 = 2, and =?utf-8?q?not-a-header?= stays text.\n.a line starting with a dot\n",
        "html": "<p>Dear Ann,</p>\n<p>" + "a long paragraph " * 20 + "</p>\n",
        "message_id": "<campaign-1.patron-2@library.example.org>",
        "date": WHEN,
        "extra": [("List-Unsubscribe", f"<mailto:news@library.example.org?subject=unsubscribe>, <{LONG_URL}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")],
    }
    return mime.build(**{**fields, **changes})


def parsed(mail: mime.Mail):
    return message_from_bytes(mail.data, policy=policy.SMTP)


def body(msg, subtype: str) -> str:
    """A part's text as a mail client shows it (line endings as the platform's)."""
    return msg.get_body((subtype,)).get_content().replace("\r\n", "\n")


def test_headers_and_both_parts_read_back_exactly():
    mail = built()
    msg = parsed(mail)
    assert (mail.sender, mail.to, mail.message_id) == ("news@library.example.org", "ann@example.org", "<campaign-1.patron-2@library.example.org>")
    assert str(msg["From"]) == "City Library <news@library.example.org>"
    assert str(msg["To"]) == "ann@example.org"
    assert str(msg["Subject"]) == "New at the library, Ann"
    assert msg["Date"].datetime == WHEN
    assert str(msg["Message-ID"]) == "<campaign-1.patron-2@library.example.org>"
    assert str(msg["List-Unsubscribe"]) == f"<mailto:news@library.example.org?subject=unsubscribe>, <{LONG_URL}>"
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert body(msg, "plain") == "Dear Ann,\n\n1 + 1 = 2, and =?utf-8?q?not-a-header?= stays text.\n.a line starting with a dot\n"
    assert body(msg, "html") == "<p>Dear Ann,</p>\n<p>" + "a long paragraph " * 20 + "</p>\n"
    assert not msg.defects and not any(p.defects for p in msg.iter_parts())


def test_lines_end_in_crlf_and_stay_short():
    lines = built().data.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 998
    assert all(len(line) <= 78 for line in lines if not line.startswith(b" <https"))  # only an unbreakable URL may run longer


def test_non_ascii_subject_body_and_sender_name_survive():
    msg = parsed(built(mail_from="Bibliothèque municipale <news@library.example.org>", subject="Grüße aus der Bücherei 📚", text="Liebe Zoë,\n\nbis bald!\n", html="<p>Liebe Zoë,</p>\n"))
    assert str(msg["From"]) == "Bibliothèque municipale <news@library.example.org>"
    assert str(msg["Subject"]) == "Grüße aus der Bücherei 📚"
    assert body(msg, "plain") == "Liebe Zoë,\n\nbis bald!\n"
    assert body(msg, "html") == "<p>Liebe Zoë,</p>\n"
    assert built(subject="Grüße").data.isascii()  # headers encoded, bodies quoted-printable


def test_a_line_break_in_a_merged_value_cannot_add_a_header():
    msg = parsed(built(subject="Hello\r\nBcc: everyone@example.org", text="Hi\r\nthere\rfriend"))
    assert msg["Bcc"] is None
    assert str(msg["Subject"]) == "Hello Bcc: everyone@example.org"
    assert body(msg, "plain") == "Hi\nthere\nfriend"


def test_an_international_address_goes_as_utf8_and_asks_for_smtputf8():
    mail = built(to="zoë@exämple.org")
    assert mail.international and not built().international
    assert "To: zoë@exämple.org".encode() in mail.data
