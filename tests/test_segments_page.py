"""The segment builder, driven through AppTest: add conditions and groups, see the count change, save,
open a preset, duplicate; what the database holds afterwards."""

from sqlalchemy import select

from crmcore.models import AuditLog, Segment
from tests.test_segments import build

PAGE = "pages/segments.py"


def metric(at) -> str:
    return at.metric[0].value


def button(at, label):
    return next(b for b in at.button if b.label == label)


def test_build_a_rule_see_the_count_change_and_save(db, app):
    with db.write() as session:
        build(session)
    at = app(role="manager", page=PAGE).run()
    assert not at.exception and not at.error
    assert metric(at) == "5"  # every patron but the erased one

    button(at, "Add condition").click().run()
    assert "Not complete yet" in at.warning[0].value and "Condition 1, Zone: choose at least one value" in at.warning[0].value
    at.multiselect(key=next(m.key for m in at.multiselect if m.label == "Values")).select("Z1").run()
    assert not at.warning and metric(at) == "3"

    # A nested group: Z1 and any of (has an email).
    button(at, "Add group").click().run()
    assert "Group 2: the group is empty" in at.warning[0].value
    group_add = [b for b in at.button if b.label == "Add condition"]
    assert len(group_add) == 2
    group_add[0].click().run()  # the group's own button comes first
    field = [s for s in at.selectbox if s.label == "Field"][1]
    field.set_value("has_email").run()
    assert metric(at) == "2", at.session_state["seg-rules"]  # A and D
    mode = [s for s in at.selectbox if s.label == "Match"][1]
    mode.set_value("none").run()
    assert metric(at) == "1"  # F: in Z1 without an email

    at.text_input(key=next(t.key for t in at.text_input if t.label == "Name")).input("Z1 without email")
    next(b for b in at.button if b.label == "Save as a new segment").click().run()
    assert not at.exception and not at.error
    assert "saved" in at.success[0].value
    with db.read() as session:
        saved = session.execute(select(Segment).where(Segment.name == "Z1 without email")).scalar_one()
    assert saved.rules == {"all": [{"field": "zone", "op": "in", "value": ["Z1"]}, {"not": {"any": [{"field": "has_email", "op": "is", "value": True}]}}]}
    assert not saved.is_preset


def test_open_a_preset_duplicate_it_and_see_a_masked_or_audited_sample(db, app):
    with db.write() as session:
        build(session)
    at = app(role="admin", page=PAGE).run()
    with db.read() as session:  # the page made the presets on first load
        lapsed = session.execute(select(Segment.id).where(Segment.name == "Lapsed", Segment.is_preset.is_(True))).scalar_one()
    at.selectbox(key="seg-pick").set_value(lapsed).run()
    button(at, "Open").click().run()
    assert at.subheader[0].value == "Lapsed"
    assert int(metric(at)) >= 0
    button(at, "Duplicate").click().run()
    assert not at.exception and not at.error
    with db.read() as session:
        copy = session.execute(select(Segment).where(Segment.name == "Copy of Lapsed")).scalar_one()
    assert not copy.is_preset and copy.rules["all"][0]["value"] == ["lapsed"]
    assert at.subheader[0].value == "Copy of Lapsed"

    at.toggle(key="seg-show-sample").set_value(True).run()
    assert not at.exception and not at.error
    assert len(at.dataframe[0].value) == int(metric(at))
    with db.read() as session:
        assert session.execute(select(AuditLog).where(AuditLog.action == "segment.sample")).scalars().first() is not None


def test_a_name_clash_is_shown_as_a_message(db, app):
    at = app(role="manager", page=PAGE).run()
    at.text_input(key=next(t.key for t in at.text_input if t.label == "Name")).input("Lapsed")
    next(b for b in at.button if b.label == "Save as a new segment").click().run()
    assert not at.exception
    assert "already exists" in at.error[0].value
