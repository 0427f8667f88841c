"""Library branding: name, logo and postal address in both parts of every message, in the preview, on the
preference page; the logo served by the app itself; a launch without a postal address is warned about."""

from __future__ import annotations

import base64
import struct
import zlib

import httpx
import pytest

from crmcore.admin import settings
from crmcore.campaigns import drafts, preference_tokens, sending
from crmcore.library import consent
from crmcore.models import AuditLog
from sqlalchemy import select
from tests.campaign_fixtures import _isolated_mail_config, add_campaign, add_patrons, add_segment, smtp  # noqa: F401
from tests.web_server import web  # noqa: F401  (fixture)

ADDRESS = "Eastwood Public Library\n12 Harbour Road\nEastwood EW1 2AB"


def tiny_png() -> bytes:
    """A real 2×1 PNG, written here (no file from elsewhere)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"\x00\xff\x00\x00\x00\x00\xff"
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def brand(db, staff, *, address: str = ADDRESS, logo: bytes | None = None) -> None:
    with db.write() as s:
        settings.put(s, actor=staff["admin"], key="library_name", value="Eastwood  Library ")
        settings.put(s, actor=staff["admin"], key="postal_address", value=address)
        if logo is not None:
            settings.put(s, actor=staff["admin"], key="library_logo", value=logo)


def test_a_sent_message_carries_the_library_name_logo_and_postal_address_in_both_parts(db, staff, smtp):
    brand(db, staff, logo=tiny_png())
    with db.write() as s:
        ids = add_patrons(s, 1)
        add_campaign(s, patron_ids=ids)
    assert sending.send_pending(db) == {"sent": 1}
    (mail,) = smtp.messages
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Eastwood Library\nEastwood Public Library\n12 Harbour Road\nEastwood EW1 2AB\n" in text.replace("\r\n", "\n")
    assert "12 Harbour Road<br>" in html and "Eastwood EW1 2AB" in html and 'alt="Eastwood Library"' in html
    assert 'src="http://127.0.0.1:8501/branding/logo?v=' in html  # from the library's own server, never inlined
    with db.read() as s:
        logged = s.scalars(select(AuditLog).where(AuditLog.entity_id == "library_logo")).one()
    assert logged.detail["new"].startswith("an image of ")  # the audit names the change, not the image's bytes


def test_a_name_and_address_are_cleaned_and_bad_ones_refused_saying_which(db, staff):
    with db.write() as s:
        assert settings.put(s, actor=staff["admin"], key="postal_address", value="  12  Harbour Road \n\n Eastwood ") == "12 Harbour Road\nEastwood"
    with pytest.raises(ValueError, match="Library logo: must be a PNG, JPEG or GIF"), db.write() as s:
        settings.put(s, actor=staff["admin"], key="library_logo", value=b"%PDF-1.4 not a picture")
    with pytest.raises(ValueError, match="Library logo: the image is 200,001 bytes"), db.write() as s:
        settings.put(s, actor=staff["admin"], key="library_logo", value=b"GIF89a" + b"\0" * 199_995)
    with pytest.raises(ValueError, match="Library name: must not be empty"), db.write() as s:
        settings.put(s, actor=staff["admin"], key="library_name", value=" \n ")


def test_the_logo_is_served_by_the_app_itself(db, staff, web):
    assert httpx.get(f"{web}/branding/logo").status_code == 404
    brand(db, staff, logo=tiny_png())
    answer = httpx.get(f"{web}/branding/logo?v=1")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png" and answer.content == tiny_png()


def test_the_preview_shows_the_branding_with_the_logo_inside_the_frame(app, db, staff):
    brand(db, staff, logo=tiny_png())
    with db.write() as s:
        add_patrons(s, 1)
        cid = drafts.compose(s, actor=staff["manager"], name="B", segment_id=add_segment(s, branches=["MAIN"]), topic="events", subject="Hi", body="Hello", holdout_pct=0).id
    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").select(cid)
    at = at.run()
    assert not at.exception and not at.error
    (frame,) = [e for e in at.get("iframe") if e.proto.src.startswith("data:")]  # not the drafts' helper frames
    document = base64.b64decode(frame.proto.src.split(",", 1)[1]).decode()
    assert 'src="data:image/png;base64,' in document and "12 Harbour Road" in document  # the frame requests nothing
    assert any("Eastwood EW1 2AB" in t.value for t in at.text)  # the text part


def test_the_preference_page_shows_the_library_name_logo_and_address(app, db, staff):
    brand(db, staff, logo=tiny_png())
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        consent.record(s, patron_id=pid, channel="email", topic="newsletter", granted=True, source="test")
    at = app(page="pages/preferences.py", query={"token": preference_tokens.make(pid)}).run()
    assert not at.exception and not at.error
    assert any(c.value == "Eastwood Library" for c in at.caption)
    assert any(t.value == "Eastwood Library\n" + ADDRESS for t in at.text)
    assert len(at.get("image")) == 1


def test_a_launch_without_a_postal_address_is_warned_about_but_allowed(app, db, staff):
    with db.write() as s:
        add_patrons(s, 2)
        cid = drafts.compose(s, actor=staff["manager"], name="W", segment_id=add_segment(s, branches=["MAIN"]), topic="events", subject="Hi", body="Hello", holdout_pct=0).id
    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").select(cid)
    at = at.run()
    at.button(key="cmp-launch").click()
    at = at.run()
    assert any("no postal address" in w.value for w in at.warning)
    brand(db, staff)
    at = at.run()
    assert not any("no postal address" in w.value for w in at.warning)


def test_the_unsubscribe_pages_show_the_library_name_and_address(db, staff, web, tmp_path):
    from tests.test_public_routes import https_link, sent_campaign

    brand(db, staff)
    _, (mail,) = sent_campaign(db, tmp_path, n=1)
    link = https_link(mail).replace("http://127.0.0.1:8501", web)
    footer = "<footer><small>Eastwood Library<br>Eastwood Public Library<br>12 Harbour Road<br>Eastwood EW1 2AB</small></footer>"
    assert footer in httpx.get(link).text
    assert footer in httpx.post(link, data={"List-Unsubscribe": "One-Click", "from": "page"}).text


def test_the_settings_page_edits_the_name_and_address_and_shows_the_logo(app, db, staff):
    at = app(role="admin", page="pages/admin_settings.py").run()
    assert not at.exception and not at.get("image")
    at.text_input(key="setting-library_name").input("Eastwood Library")
    at.text_area(key="setting-postal_address").input(ADDRESS)
    at.button(key="FormSubmitter:settings-Save settings").click().run()
    assert not at.exception and not at.error
    with db.read() as s:
        assert (settings.get(s, "library_name"), settings.get(s, "postal_address")) == ("Eastwood Library", ADDRESS)
    with db.write() as s:
        settings.put(s, actor=staff["admin"], key="library_logo", value=tiny_png())
    at = app(role="admin", page="pages/admin_settings.py").run()
    assert len(at.get("image")) == 1  # the logo now
    at.checkbox(key="setting-library_logo-remove").check()
    at.button(key="FormSubmitter:settings-Save settings").click().run()
    assert not at.exception and not at.error
    with db.read() as s:
        assert settings.branding(s).logo == ""


def test_a_test_send_carries_the_logo_address_not_the_image_itself(db, staff, smtp):
    brand(db, staff, logo=tiny_png())
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        cid = drafts.compose(s, actor=staff["manager"], name="T", segment_id=add_segment(s, branches=["MAIN"]), topic="events", subject="Hi", body="Hello", holdout_pct=0).id
    assert 'src="data:image/png' in drafts.preview(db, actor=staff["manager"], campaign_id=cid, patron_id=pid).html  # the frame's copy
    drafts.send_test(db, actor=staff["manager"], campaign_id=cid, patron_id=pid)
    html = smtp.messages[0].get_body(("html",)).get_content()
    assert 'src="http://127.0.0.1:8501/branding/logo?v=' in html and "data:image" not in html
    assert "12 Harbour Road" in smtp.messages[0].get_body(("plain",)).get_content()
