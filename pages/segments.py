"""Campaigns → Segments: build a segment from rules, see its size live and a sample, save, load presets."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

import ui
from crmcore.admin.permissions import Actor
from crmcore.campaigns import segments
from crmcore.campaigns.rules import tree
from crmcore.campaigns.rules.language import validate
from crmcore.library import consent
from crmcore.signups import prospects
from ui.segments import RULES, render_group, set_rules

LOADED = "seg-loaded"  # id of the saved segment being edited, if any


@st.cache_data(ttl=30, show_spinner=False)
def live_count(url: str, rules_json: str, actor: Actor) -> int:
    """The count for a rule tree; keyed by the database, its JSON and the actor, fresh for half a minute."""
    with ui.db().read() as session:
        return segments.count(session, actor=actor, rules=json.loads(rules_json))


@st.cache_data(ttl=30, show_spinner=False)
def live_sample(url: str, rules_json: str, actor: Actor) -> pd.DataFrame:
    with ui.db().write() as session:  # showing names is audited
        return pd.DataFrame(segments.sample(session, actor=actor, rules=json.loads(rules_json), limit=20), columns=segments.SAMPLE_COLUMNS)


@st.cache_data(ttl=300, show_spinner=False)
def builder_choices(url: str, actor: Actor) -> dict:
    with ui.db().read() as session:
        return segments.choices(session, actor=actor)


def done(message: str) -> None:
    """Show `message` on the fresh page (after the write is committed)."""
    st.session_state["seg-done"] = message
    ui.refresh_after_write()
    st.rerun()


def load(segment_id: int | None, rules: dict) -> None:
    st.session_state[LOADED] = segment_id
    set_rules(rules)


st.title("Segments")
st.caption("Combine conditions to describe a group of patrons. The count updates as you edit.")
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("seg-done", None):
    st.success(message)

AUDIENCES = {"patrons": "Patrons", "prospects": "Prospects (people who signed up, without a card)"}
if st.radio("Who", list(AUDIENCES), format_func=AUDIENCES.get, horizontal=True, key="seg-audience") == "prospects":
    with ui.user_errors():
        with db.read() as session:
            reached = {consent.TOPIC_LABELS[t].capitalize(): prospects.count_audience(session, actor=me, topic=t) for t in prospects.TOPICS}
        st.caption("Prospects are not built from rules: a campaign to prospects goes to everyone who confirmed its topic by email "
                   "and has no card yet (once they do, they are patrons). Choose “Prospects” when you compose the campaign.")
        ui.table(pd.DataFrame({"topic": list(reached), "prospects": list(reached.values())}), hide_index=True)
    st.stop()

with ui.user_errors():
    if not st.session_state.get("seg-presets"):
        with db.read() as session:  # a write only when a preset is missing: every new tab opening it wrote before (B13)
            missing = segments.presets_missing(session)
        if missing:
            with db.write() as session:
                segments.ensure_presets(session)
        st.session_state["seg-presets"] = True
    with db.read() as session:
        saved = segments.list_segments(session, actor=me)
    by_id = {s.id: s for s in saved}
    if RULES not in st.session_state:
        load(None, {"all": []})

    top = st.columns([5, 1, 1], vertical_alignment="bottom")
    pick = top[0].selectbox("Open a saved segment or preset", [None, *by_id], format_func=lambda i: "—" if i is None else f"{by_id[i].name}{' (preset)' if by_id[i].is_preset else ''}", key="seg-pick")
    top[1].button("Open", disabled=pick is None, on_click=lambda: load(pick, by_id[pick].rules), key="seg-open")
    top[2].button("New", on_click=lambda: load(None, {"all": []}), key="seg-new")

    current = by_id.get(st.session_state.get(LOADED))
    if current is not None:
        st.subheader(ui.md(current.name))
        if current.description:
            st.caption(ui.md(current.description))
    choices = builder_choices(db.url, me)
    with st.container(border=True):
        edited = render_group(st.session_state[RULES], (), choices)
    if edited != st.session_state[RULES]:
        st.session_state[RULES] = edited
    rules = st.session_state[RULES]

    try:
        validate(rules)
        problem = None
    except ValueError as exc:
        problem = str(exc)
    if problem:
        st.warning(f"Not complete yet — {problem}", icon=":material/edit_note:")
    else:
        rules_json = json.dumps(rules, sort_keys=True)
        st.metric("Matching patrons", f"{live_count(db.url, rules_json, me):,}")
        st.caption(ui.md(tree.describe(rules, choices)))
        if st.toggle("Show a sample of matching patrons", key="seg-show-sample"):
            ui.table(live_sample(db.url, rules_json, me), hide_index=True, width="stretch")

    with st.form("seg-save", clear_on_submit=False):
        editable = current is not None and not current.is_preset
        name = st.text_input("Name", value=current.name if editable else "", max_chars=120)
        description = st.text_input("Description", value=(current.description or "") if editable else "", max_chars=500)
        cols = st.columns(2)
        save_new = cols[0].form_submit_button("Save as a new segment", type="primary", disabled=bool(problem))
        save_changes = cols[1].form_submit_button("Save changes", disabled=not editable or bool(problem))
    if save_new:
        with db.write() as session:
            made = segments.save(session, actor=me, name=name, rules=rules, description=description)
        st.session_state[LOADED] = made.id
        done(f"Segment {ui.md(made.name)} saved.")
    if save_changes and editable:
        with db.write() as session:
            changed = segments.update(session, actor=me, segment_id=current.id, name=name, rules=rules, description=description)
        done(f"Segment {ui.md(changed.name)} updated.")

    if current is not None:
        cols = st.columns(2)
        if cols[0].button("Duplicate", icon=":material/content_copy:", key="seg-duplicate"):
            with db.write() as session:
                copy = segments.duplicate(session, actor=me, segment_id=current.id)
            load(copy.id, copy.rules)
            done(f"Saved a copy as {ui.md(copy.name)}; you are now editing the copy.")
        if not current.is_preset:
            with cols[1].popover("Delete", icon=":material/delete:"):
                st.write("Delete this segment? Campaigns already launched keep their audience.")
                if st.button("Delete for good", type="primary", key="seg-delete"):
                    with db.write() as session:
                        segments.delete(session, actor=me, segment_id=current.id)
                    load(None, {"all": []})
                    done("Segment deleted.")

    st.subheader("Saved segments")
    ui.table(
        pd.DataFrame(
            [{"Name": s.name, "Preset": s.is_preset, "Rules": tree.describe(s.rules, choices), "Description": s.description, "Updated": s.updated_at} for s in saved]
        ),
        hide_index=True,
        width="stretch",
    )
