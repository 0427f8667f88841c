"""Campaigns → Journeys: automated series of messages patrons enter on a trigger (welcome, first use, we miss
you, card renewal, after the event, or your own), each measured against its holdout."""

from __future__ import annotations

import copy

import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.campaigns import segments
from crmcore.campaigns.rules import tree
from crmcore.campaigns.rules.language import validate as validate_rule
from crmcore.journeys import definitions, editing, results
from crmcore.languages import codes
from crmcore.library import consent
from crmcore.surveys import definitions as survey_definitions
from ui import variants
from ui.segments import render_group, set_rules

st.title("Journeys")
st.caption("A journey sends a short series of messages to each patron who enters it, checking consent before each one. "
           "A share of patrons (the holdout) is sent nothing, so that the results show what the journey changed.")
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("jny-done", None):
    st.success(message)

with db.read() as session:
    listed = editing.list_journeys(session, actor=me)
    saved_segments = segments.list_segments(session, actor=me)
    segment_names, segment_rules = {s.id: s.name for s in saved_segments}, {s.id: s.rules for s in saved_segments}
    rule_names = segments.choices(session, actor=me)
    survey_names = survey_definitions.choices(session, actor=me)
if listed:
    ui.table(listed, hide_index=True, column_order=["name", "status", "version", "in the journey now", "entered in all", "holdout %"])
else:
    st.info("No journeys yet: start one from a template below.")

SCRATCH = "From scratch"
with st.form("jny-new"):
    st.subheader("Start a journey")
    name = st.text_input("Name")
    starts = {SCRATCH: None, **{spec["label"]: key for key, spec in definitions.TEMPLATES.items()}}
    start = st.selectbox("Start from", list(starts), index=1)
    st.caption(ui.md(" · ".join(f"{spec['label']}: {spec['description']}" for spec in definitions.TEMPLATES.values())))
    holdout = st.number_input("Holdout (% of patrons sent nothing)", min_value=0.0, max_value=50.0, value=10.0, step=1.0)
    if st.form_submit_button("Start the journey"):
        with ui.user_errors(), db.write() as session:
            key = starts[start]
            made = editing.create(session, actor=me, name=name, template=key, definition=None if key else definitions.blank(), holdout_pct=holdout)
            st.session_state["jny-done"], st.session_state["jny-pick"] = f"Journey {made.name!r} started (not active yet).", made.id
        if "jny-done" in st.session_state:
            st.rerun()

if not listed:
    st.stop()
ids = {row["id"]: row["name"] for row in listed}
picked = st.selectbox("Journey", list(ids), format_func=ids.get, index=list(ids).index(st.session_state["jny-pick"]) if st.session_state.get("jny-pick") in ids else 0)
with db.read() as session:
    journey, version = editing.definition_of(session, actor=me, journey_id=picked)
    journey_status, version_number = journey.status, version.number
work_key = f"jny-def-{picked}-{version.id}"
if work_key not in st.session_state:
    st.session_state[work_key] = copy.deepcopy(version.definition)
d = st.session_state[work_key]
st.markdown(f"**{ui.md(ids[picked])}** — {ui.md(journey_status)}, version {version_number}")
with db.read() as session:
    held = editing.held_messages(session, actor=me, journey_id=picked)
if journey_status == "paused":
    st.caption(f"Paused: nobody enters or moves on, and {ui.count(held, 'message')} already queued {'is' if held == 1 else 'are'} held until the journey is resumed."
               if held else "Paused: nobody enters or moves on until the journey is resumed.")
elif held:
    st.caption(f"{ui.count(held, 'message')} held while the journey was paused {'waits' if held == 1 else 'wait'}: "
               "those patrons had their weekly number of messages meanwhile, and get them as the weekly limit allows.")

if me.can(Perm.LAUNCH_CAMPAIGNS):
    cols = st.columns(3)
    action = None
    if journey_status in ("draft",) and cols[0].button("Activate"):
        action = editing.activate
    if journey_status == "active" and cols[1].button("Pause"):
        action = editing.pause
    if journey_status == "paused" and cols[2].button("Resume"):
        action = editing.resume
    if action:
        with ui.user_errors(), db.write() as session:
            action(session, actor=me, journey_id=picked)
            st.session_state["jny-done"], st.session_state["jny-pick"] = "Done.", picked
        if "jny-done" in st.session_state:
            st.rerun()

st.subheader("Trigger")
trigger = d["trigger"]
kinds = list(definitions.TRIGGERS)
trigger["kind"] = st.selectbox("Patrons enter when", kinds, format_func=definitions.TRIGGERS.get, index=kinds.index(trigger["kind"]), key=f"{work_key}-tk")
if trigger["kind"] == "segment":
    if segment_names:
        seg_ids = list(segment_names)
        current = trigger.get("segment_id") if trigger.get("segment_id") in segment_names else None
        if trigger.get("rule") is not None and current is None:
            st.caption(ui.md(f"The template's own condition: {tree.describe(trigger['rule'], rule_names)}. Choose a saved segment to use that instead."))
        choice = st.selectbox("Segment", [None, *seg_ids], format_func=lambda i: "The template's condition" if i is None else segment_names[i],
                              index=0 if current is None else 1 + seg_ids.index(current), key=f"{work_key}-ts")
        if choice is not None:
            trigger["segment_id"] = choice
            trigger.pop("rule", None)
else:
    if trigger.get("rule") is not None:
        st.caption(ui.md(f"Only patrons where {tree.describe(trigger['rule'], rule_names)}."))
    trigger["days"] = int(st.number_input("Number of days", min_value=0, max_value=definitions.MAX_DAYS, value=int(trigger.get("days") or 0), key=f"{work_key}-td"))

st.subheader("Steps")
step_kinds = list(definitions.STEP_KINDS)
channels = list(definitions.CHANNELS)
topics = list(consent.TOPICS)
steps = d["steps"]
# Widget keys carry the layout: adding, removing or changing a step's kind builds every step's widgets afresh
# from the definition, so no widget keeps the value of the step that was at its place before.
layout_key = f"{work_key}-layout"
wk = f"{work_key}-{st.session_state.get(layout_key, 0)}"


def relayout() -> None:
    st.session_state[layout_key] = st.session_state.get(layout_key, 0) + 1
    st.rerun()


NEW_STEPS = {"send": {"kind": "send", "channel": "email", "topic": "services", "subject": "", "body": ""}, "wait": {"kind": "wait", "days": 7},
             "branch": {"kind": "branch", "rule": {"all": [{"field": "days_since_activity", "op": "never"}]}, "otherwise": None}, "end": {"kind": "end"}}
for i, step in enumerate(steps):
    with st.container(border=True):
        kind = st.selectbox(f"Step {i + 1}", step_kinds, format_func=definitions.STEP_KINDS.get, index=step_kinds.index(step["kind"]), key=f"{wk}-k{i}")
        if kind != step["kind"]:
            steps[i] = copy.deepcopy(NEW_STEPS[kind])
            relayout()
        if kind == "send":
            step["channel"] = st.radio("Channel", channels, format_func=definitions.CHANNELS.get, horizontal=True, key=f"{wk}-c{i}",
                                       index=channels.index(step.get("channel")) if step.get("channel") in channels else 0)
            step["topic"] = st.selectbox("Topic", topics, format_func=consent.TOPIC_LABELS.get, index=topics.index(step.get("topic", "services")), key=f"{wk}-t{i}")
            if step["channel"] == "email":  # a text has no subject
                step["subject"] = st.text_input("Subject", value=step.get("subject", ""), key=f"{wk}-s{i}")
            step["body"] = st.text_area("Message", value=step.get("body", ""), key=f"{wk}-b{i}")
            if step["channel"] == "sms":
                with ui.user_errors(), db.read() as session:
                    length = editing.text_length(session, actor=me, body=step["body"])
                    st.caption(f"Length with the longest names on record (and the stop line): {length.describe()}. "
                               "Sent only with the patron's consent to texts on this topic, and never in quiet hours.")
            survey_ids = [None, *survey_names]
            step["survey_id"] = st.selectbox(
                "Survey its {{ survey_link }} opens", survey_ids, format_func=lambda s: "No survey" if s is None else survey_names[s], key=f"{wk}-sv{i}",
                index=survey_ids.index(step.get("survey_id")) if step.get("survey_id") in survey_ids else 0,
            )
            written = definitions.words_of(step)
            with st.expander(f"In other languages ({len(written)})" if written else "In other languages"):
                submitted = variants.words(existing=written, tag=f"{wk}-v{i}", editable=True, subject=step["channel"] == "email")
            if submitted:  # saved with the journey, as every change (a new version once patrons have entered)
                action, language, subject, body = submitted
                with ui.user_errors(), db.write() as session:
                    changed, code = definitions.with_words(d, index=i, language=language, subject=subject, body=body, remove=action == "remove")
                    saved = editing.edit(session, actor=me, journey_id=picked, definition=changed)
                    st.session_state["jny-done"] = f"{variants.done_text(action, code)} Saved as version {saved.number}."
                    st.session_state["jny-pick"] = picked
                    st.session_state.pop(work_key, None)
                if "jny-done" in st.session_state:
                    st.rerun()
            if step["channel"] == "sms" and written:
                with ui.user_errors(), db.read() as session:
                    for code, (_subject, body) in written.items():
                        st.caption(f"{codes.name(code).capitalize()}: {editing.text_length(session, actor=me, body=body).describe()}.")
        elif kind == "wait":
            step["days"] = int(st.number_input("Days to wait", min_value=1, max_value=definitions.MAX_DAYS, value=int(step.get("days") or 7), key=f"{wk}-w{i}"))
        elif kind == "branch":
            ns = f"{wk}-rule{i}"  # this step's own rule builder (ui/segments)
            if f"{ns}-rules" not in st.session_state:
                set_rules(step.get("rule") or {"all": []}, ns)
            st.caption("Patrons who match these conditions go on to the next step:")
            with st.container(border=True):
                edited = render_group(st.session_state[f"{ns}-rules"], (), rule_names, ns=ns)
            if edited != st.session_state[f"{ns}-rules"]:
                st.session_state[f"{ns}-rules"] = edited
            step["rule"] = copy.deepcopy(st.session_state[f"{ns}-rules"])
            try:
                validate_rule(step["rule"])
                st.caption(ui.md(f"Goes on for patrons where {tree.describe(step['rule'], rule_names)}."))
            except ValueError as exc:
                st.warning(f"Not complete yet — {exc}", icon=":material/edit_note:")
            if segment_names:
                from_segment = st.columns([5, 2], vertical_alignment="bottom")
                seg = from_segment[0].selectbox("Or start from a saved segment", [None, *segment_names], format_func=lambda s: "—" if s is None else segment_names[s],
                                                key=f"{wk}-r{i}")
                from_segment[1].button("Use its conditions", key=f"{wk}-ru{i}", disabled=seg is None,
                                       on_click=lambda ns=ns, seg=seg: set_rules(segment_rules[seg], ns))
            later = [None, *range(i + 1, len(steps))]
            step["otherwise"] = st.selectbox("The others go to", later, format_func=lambda t: "the end" if t is None else f"step {t + 1}",
                                             index=later.index(step.get("otherwise")) if step.get("otherwise") in later else 0, key=f"{wk}-o{i}")
        c1, c2 = st.columns(2)
        if c1.button("Add a step below", key=f"{wk}-add{i}"):
            steps.insert(i + 1, {"kind": "wait", "days": 7})
            relayout()
        if len(steps) > 1 and c2.button("Remove this step", key=f"{wk}-del{i}"):
            steps.pop(i)
            relayout()

st.subheader("Exits, re-entry and goal")
d["exits"] = st.multiselect("Patrons leave when they", list(definitions.EXITS), default=d.get("exits") or [], format_func=definitions.EXITS.get, key=f"{work_key}-x")
st.caption("Withdrawing consent or being erased always ends a patron's journey.")
again = st.checkbox("Patrons may enter again", value=d.get("reentry_days") is not None, key=f"{work_key}-re")
d["reentry_days"] = int(st.number_input("Days after leaving", min_value=1, max_value=definitions.MAX_DAYS, value=int(d.get("reentry_days") or 365), key=f"{work_key}-rd")) if again else None
goals = list(definitions.GOALS)
d["goal"] = st.selectbox("Goal", goals, format_func=definitions.GOALS.get, index=goals.index(d.get("goal", "activity")), key=f"{work_key}-g")
d["goal_days"] = int(st.number_input("Days to reach the goal", min_value=1, max_value=365, value=int(d.get("goal_days") or 30), key=f"{work_key}-gd"))

if st.button("Save the journey", type="primary"):
    with ui.user_errors(), db.write() as session:
        saved = editing.edit(session, actor=me, journey_id=picked, definition=copy.deepcopy(d))
        st.session_state["jny-done"], st.session_state["jny-pick"] = f"Saved as version {saved.number}.", picked
        st.session_state.pop(work_key, None)
    if "jny-done" in st.session_state:
        st.rerun()

st.subheader("Preview")
sends = [i for i, s in enumerate(steps) if s["kind"] == "send"]
if sends:
    with db.read() as session, ui.user_errors():
        samples = dict(editing.sample_patrons(session, actor=me, definition=d, limit=10))
    if samples:
        which = st.selectbox("Message", sends, format_func=lambda i: f"Step {i + 1} ({definitions.CHANNELS[steps[i]['channel']].lower()})", key=f"{work_key}-pv")
        who = st.selectbox("For patron", list(samples), format_func=samples.get, key=f"{work_key}-pp")
        language = variants.preview_language(languages=definitions.words_of(steps[which]), key=f"{work_key}-pl")
        if st.button("Preview"):
            with ui.user_errors():
                shown = editing.preview(db, actor=me, step=steps[which], patron_id=who, language=language)
                if steps[which].get("channel") != "sms":  # a text has no subject: what the phone shows
                    st.text(shown.subject)
                st.text(shown.text)
        if st.button("Send me a test"):
            with ui.user_errors():
                st.success(f"Test sent to {ui.md(editing.send_test(db, actor=me, step=steps[which], patron_id=who, language=language))}.")

if me.can(Perm.VIEW_DASHBOARD):
    st.subheader("Results")
    with db.read() as session:
        r = results.journey_results(session, actor=me, journey_id=picked)
    st.write(f"Entered: {r['entered']} · in the journey: {r['waiting']} · finished: {r['finished']}")
    if r["exited"]:
        ui.table([{"left because": k, "patrons": v} for k, v in r["exited"].items()], hide_index=True)
    if r["steps"]:
        ui.table(r["steps"], hide_index=True)
    if r["lift"] is None:
        st.caption(f"Goal: {r['goal'].lower()} within {r['goal_days']} days. Conversion shows once recipients and holdout are large enough.")
    else:
        st.write(f"Goal: {r['goal'].lower()} within {r['goal_days']} days — recipients {100 * r['recipients_rate']:.1f} %, holdout {100 * r['holdout_rate']:.1f} %, "
                 f"lift {100 * r['lift']:+.1f} points (95 % interval {100 * r['lift_low']:+.1f} to {100 * r['lift_high']:+.1f}).")
