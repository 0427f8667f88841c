"""Saved templates: a message kept by name, listed, loaded into a new campaign, deleted; checked and audited."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crmcore.campaigns import saved_templates
from crmcore.models import AuditLog, Campaign, SavedTemplate
from tests.campaign_fixtures import _isolated_mail_config, add_segment  # noqa: F401
from tests.test_campaign_pages import by_label


def test_a_template_is_saved_by_name_listed_replaced_and_deleted_with_an_audit_trail(db, staff):
    me = staff["manager"]
    with db.write() as s:
        first = saved_templates.save(s, actor=me, name="  Autumn   news ", subject="News from {{ branch }}", body="Dear {{ first_name }},")
        saved_templates.save(s, actor=me, name="alpha", subject="A", body="Hello")
    with db.read() as s:
        assert [t.name for t in saved_templates.list_templates(s, actor=me)] == ["alpha", "Autumn news"]
    with pytest.raises(ValueError, match="'Autumn news' exists already"), db.write() as s:
        saved_templates.save(s, actor=me, name="AUTUMN NEWS", subject="Other", body="Other")
    with db.write() as s:
        again = saved_templates.save(s, actor=me, name="Autumn news", subject="Changed", body="Changed {{ branch }}", replace=True)
    assert again.id == first.id
    with db.write() as s:
        assert saved_templates.delete(s, actor=me, template_id=first.id) == "Autumn news"
    with db.read() as s:
        assert [t.name for t in saved_templates.list_templates(s, actor=me)] == ["alpha"]
        actions = [a for (a,) in s.execute(select(AuditLog.action).where(AuditLog.entity == "saved_template").order_by(AuditLog.id))]
    assert actions == ["template.save", "template.save", "template.replace", "template.delete"]
    with pytest.raises(LookupError, match="no saved template"), db.read() as s:
        saved_templates.get(s, actor=me, template_id=first.id)


@pytest.mark.parametrize(
    "name,subject,body,message",
    [
        ("", "Hi", "Hello", "Template name: give the template a name"),
        ("x" * 121, "Hi", "Hello", "Template name: 121 characters; at most 120"),
        ("Bad", "Hi", "Dear {{ firstname }}", "'firstname' is undefined"),
        ("Bad", "", "Hello", "Subject: write a subject"),
    ],
)
def test_a_bad_template_is_refused_saying_what_is_wrong(db, staff, name, subject, body, message):
    with pytest.raises(ValueError, match=message), db.write() as s:
        saved_templates.save(s, actor=staff["manager"], name=name, subject=subject, body=body)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(SavedTemplate)) == 0


def test_save_load_into_a_new_campaign_and_delete_from_the_page(app, db):
    with db.write() as s:
        add_segment(s, branches=["MAIN"], name="Main branch")
    at = app(role="manager", page="pages/campaigns.py").run()
    assert not at.exception
    by_label(at.text_input, "Subject").input("Story time at {{ branch }}")
    by_label(at.text_area, "Message").input("Dear {{ first_name }},\n\nStories every Saturday.")
    by_label(at.text_input, "Template name").input("Story time")
    by_label(at.button, "Save as template").click()
    at = at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Template saved: Story time" in m.value for m in at.success)
    with db.read() as s:
        (row,) = s.scalars(select(SavedTemplate)).all()
        assert (row.subject, row.body) == ("Story time at {{ branch }}", "Dear {{ first_name }},\n\nStories every Saturday.")
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0  # a template is not a draft

    at = app(role="manager", page="pages/campaigns.py").run()  # another day, a fresh editor
    assert by_label(at.text_input, "Subject").value == ""
    by_label(at.selectbox, "Start from a saved template").select(row.id)
    by_label(at.button, "Load template").click()
    at = at.run()
    assert not at.exception and not at.error
    assert by_label(at.text_input, "Subject").value == "Story time at {{ branch }}"
    assert by_label(at.text_area, "Message").value == "Dear {{ first_name }},\n\nStories every Saturday."
    by_label(at.text_input, "Name").input("Saturday stories")
    by_label(at.button, "Save draft").click()
    at = at.run()
    assert not at.exception and not at.error
    with db.read() as s:
        (campaign,) = s.scalars(select(Campaign)).all()
    assert (campaign.name, campaign.subject_template) == ("Saturday stories", "Story time at {{ branch }}")

    at.selectbox(key="cmp-pick").select("New draft")
    at = at.run()
    at.button(key="cmp-template-delete").click()
    at = at.run()
    assert not at.exception and any("Template deleted: Story time" in m.value for m in at.success)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(SavedTemplate)) == 0
        assert s.get(Campaign, campaign.id).body_template.startswith("Dear")  # the campaign keeps its copy
