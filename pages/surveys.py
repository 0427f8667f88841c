"""Surveys: build one (questions, who follows up unhappy answers), open and close it, its link and QR code
for the branch, and its results: NPS with its interval, by group, answers per question, free text."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

import ui
from crmcore.admin.permissions import Perm, Role, allowed
from crmcore.campaigns import sending
from crmcore.outreach import tasks
from crmcore.surveys import definitions, qr, responses, results, tokens
from crmcore.surveys.questions import TYPES
from ui import charts

me = ui.actor()
db = ui.db()
st.title("Surveys")
st.caption("Ask patrons what they think: send a survey with a campaign ({{ survey_link }} in the message), or put its QR code up in a branch.")

with db.read() as session:
    surveys = {s.id: s for s in definitions.list_surveys(session, actor=me)}
    staff = tasks.assignable_staff(session, actor=me)
    branch_names = definitions.branch_choices(session, actor=me)
    base_url = sending.public_url(session)

NEW = 0
if "srv-pick-next" in st.session_state:  # a survey just saved: show it (set before the picker exists)
    st.session_state["srv-pick"] = st.session_state.pop("srv-pick-next")
picked = st.selectbox(
    "Survey", [NEW, *surveys], key="srv-pick",
    format_func=lambda i: "New survey" if i == NEW else f"{surveys[i].name} ({definitions.STATUSES[surveys[i].status]})",
    index=1 if surveys else 0,
)
survey = surveys.get(picked)

ROLE_TARGETS = {f"role:{r.value}": f"Anyone with the {r.value} role (the least busy)" for r in Role if allowed(r, Perm.VIEW_OUTREACH)}
STAFF_TARGETS = {f"staff:{i}": name for i, name in staff.items()}
TARGETS = {**ROLE_TARGETS, **STAFF_TARGETS}


def builder() -> None:
    editable = survey is None or survey.status == "draft"
    if not editable:
        st.info("Only a draft's questions can be changed: this survey has been opened.")
    rows = survey.questions if survey else [{"type": "nps", "text": "How likely are you to recommend the library to a friend?", "required": True},
                                            {"type": "text", "text": "What is the main reason for your score?", "required": False},
                                            {"type": "contact", "text": "May we contact you about your answers?", "required": False}]
    frame = pd.DataFrame([{"type": r["type"], "question": r["text"], "choices": "; ".join(r.get("choices", [])), "required": bool(r.get("required"))} for r in rows])
    with st.form(f"srv-build-{picked}"):
        name = st.text_input("Name", value=survey.name if survey else "", key=f"srv-name-{picked}")
        intro = st.text_area("Introduction (shown above the questions)", value=(survey.intro or "") if survey else "", key=f"srv-intro-{picked}")
        edited = st.data_editor(
            frame, num_rows="dynamic", hide_index=True, key=f"srv-questions-{picked}", disabled=not editable,
            column_config={
                "type": st.column_config.SelectboxColumn("Kind of question", options=list(TYPES), required=True, help=" · ".join(f"{k}: {v}" for k, v in TYPES.items())),
                "question": st.column_config.TextColumn("Question", required=True, max_chars=300),
                "choices": st.column_config.TextColumn("Choices (separated by ;)", help="For one choice and several choices only."),
                "required": st.column_config.CheckboxColumn("Must be answered"),
            },
        )
        current = f"staff:{survey.follow_up_staff_id}" if survey and survey.follow_up_staff_id else f"role:{survey.follow_up_role}" if survey and survey.follow_up_role else "role:outreach"
        keys = list(TARGETS)
        target = st.selectbox("Follow-ups of unhappy answers (0 to 6) and requests to be contacted go to", keys, format_func=TARGETS.get,
                              index=keys.index(current) if current in keys else 0, key=f"srv-target-{picked}")
        by_branch = {}
        if branch_names:
            with st.expander("A different person for a branch's patrons"):
                for bid, bname in branch_names.items():
                    chosen = (survey.follow_up_by_branch or {}).get(str(bid)) if survey else None
                    ids = [None, *staff]
                    by_branch[bid] = st.selectbox(ui.md(bname), ids, format_func=lambda i: "As above" if i is None else staff[i],
                                                  index=ids.index(chosen) if chosen in ids else 0, key=f"srv-branch-{picked}-{bid}")
        save = st.form_submit_button("Save draft", type="primary", disabled=not editable)
    if save:
        questions = [{"type": r["type"], "text": r["question"], "choices": [c for c in str(r["choices"] or "").split(";")], "required": bool(r["required"])}
                     for r in edited.to_dict("records") if any(str(r.get(c) or "").strip() for c in ("type", "question"))]
        kind, _, value = target.partition(":")
        with ui.user_errors():
            with db.write() as session:
                made = definitions.save(session, actor=me, name=name, intro=intro, questions=questions, survey_id=survey.id if survey else None,
                                        follow_up_staff_id=int(value) if kind == "staff" else None, follow_up_role=value if kind == "role" else None,
                                        follow_up_by_branch=by_branch)
            st.session_state["srv-pick-next"] = made.id
            ui.refresh_after_write()
            st.rerun()


def status_controls() -> None:
    moves = {"draft": ("open", "Open to answers"), "open": ("closed", "Close"), "closed": ("open", "Open again")}
    status, label = moves[survey.status]
    if me.can(Perm.LAUNCH_CAMPAIGNS) and st.button(label, key="srv-status", icon=":material/published_with_changes:"):
        with ui.user_errors():
            with db.write() as session:
                definitions.set_status(session, actor=me, survey_id=survey.id, status=status)
            ui.refresh_after_write()
            st.rerun()


def link_and_code() -> None:
    address = f"{base_url}/survey/{tokens.anonymous(survey.id)}"
    st.markdown("**For the branch: anyone can answer, no patron is linked** (a few answers per device every ten minutes).")
    st.code(address, language=None)
    picture = qr.svg(address)
    st.image(picture.decode("utf-8"), width=220, caption="QR code of the link")
    st.download_button("Download the QR code (SVG)", picture, f"survey-{survey.id}-qr.svg", "image/svg+xml", key="srv-qr")
    st.caption("To send each patron their own link, put {{ survey_link }} in a campaign's message and choose this survey with the campaign.")


def nps_chart(frame: pd.DataFrame, title: str) -> None:
    """A dot per group with its interval (Altair: a dot plot reads better than bars for an interval)."""
    if frame.empty:
        return
    shown = frame.loc[[not isinstance(v, str) for v in frame["nps"]]].astype({"nps": float, "low": float, "high": float})
    if shown.empty:
        return
    base = alt.Chart(shown).encode(y=alt.Y("group:N", title=title, sort=None))
    chart = base.mark_rule().encode(x=alt.X("low:Q", title="NPS (95 % interval)", scale=alt.Scale(domain=[-100, 100])), x2="high:Q") + base.mark_circle(size=90).encode(
        x="nps:Q", tooltip=[alt.Tooltip("group:N", title=title), alt.Tooltip("nps:Q", title="NPS"), alt.Tooltip("responses:Q", title="Answers")]
    )
    st.altair_chart(chart, width="stretch")


def results_view() -> None:
    with db.read() as session:
        s = results.summary(session, actor=me, survey_id=survey.id)
    cols = st.columns(4)
    cols[0].metric("NPS", "—" if s["nps"] is None else f"{s['nps']:+.0f}")
    cols[1].metric("95 % interval", "—" if s["low"] is None else f"{s['low']:+.0f} to {s['high']:+.0f}")
    cols[2].metric("Answers", f"{s['answers']:,}")
    cols[3].metric("Response rate", "—" if s["response_rate"] is None else f"{100 * s['response_rate']:.1f} %",
                   help=f"Patrons who answered after a campaign's message, of the {s['sent']:,} sent the survey.")
    st.caption(f"{s['promoters']:,} promoters (9–10) · {s['passives']:,} passives (7–8) · {s['detractors']:,} detractors (0–6) · "
               f"follow-ups: {s['followed_up']:,} done of {s['follow_ups']:,}. The interval is NPS ± 1.96 standard errors of the −1/0/+1 score.")
    by = st.segmented_control("NPS by", list(results.GROUPS), format_func=results.GROUPS.get, default="branch", key="srv-by") or "branch"
    with db.read() as session:
        frame = results.by_group(session, actor=me, survey_id=survey.id, by=by)
    nps_chart(frame, results.GROUPS[by])
    st.caption(charts.summary(frame, measure="nps", by="group", label="NPS"))
    ui.table(frame.rename(columns={"group": results.GROUPS[by].lower(), "nps": "NPS", "low": "interval from", "high": "interval to"}), hide_index=True)
    ui.download_buttons(frame, name=f"survey-{survey.id}-nps-by-{by}", key="srv-by-csv")
    st.subheader("Answers per question")
    with db.read() as session:
        spread = results.distributions(session, actor=me, survey_id=survey.id)
    if not spread.empty:
        numbers = spread.assign(answers=pd.to_numeric(spread["answers"], errors="coerce"))
        small = (
            alt.Chart(numbers).mark_bar().encode(x=alt.X("answers:Q", title="Answers"), y=alt.Y("answer:N", title=None, sort=None))
            .properties(width=260, height=alt.Step(14)).facet(facet=alt.Facet("question:N", title=None), columns=2).resolve_scale(y="independent")
        )
        st.altair_chart(small)
        st.caption(charts.summary(spread, measure="answers", by="answer", label="answers"))
    ui.table(spread, hide_index=True)
    ui.download_buttons(spread, name=f"survey-{survey.id}-answers", key="srv-answers-csv")
    st.subheader("Written answers")
    if not me.can(Perm.VIEW_PII):
        st.caption("Written answers are personal data: only roles that may see patrons' details read them.")
        return
    search = st.text_input("Search the written answers", key="srv-search")
    if st.button("Show written answers", key="srv-texts", icon=":material/visibility:", help="Each showing is written to the audit log."):
        with ui.user_errors():
            with db.write() as session:
                rows = pd.DataFrame(responses.texts(session, actor=me, survey_id=survey.id, search=search))
            if rows.empty:
                st.info("No written answers" + (" with that text." if search else " yet."))
            else:
                ui.table(ui.local_frame(rows, "answered_at", "followed_up"), hide_index=True)
                ui.download_buttons(rows, name=f"survey-{survey.id}-written-answers", key="srv-texts-csv", personal=True)


if survey is None:
    if me.can(Perm.COMPOSE_CAMPAIGNS):
        builder()
else:
    st.caption(ui.md(f"{survey.name}: {definitions.STATUSES[survey.status]}."))
    if survey.status != "draft":
        status_controls()
    tabs = st.tabs(["Results", "Questions", "Link and QR code"])
    with tabs[0]:
        results_view()
    with tabs[1]:
        if survey.status == "draft":
            status_controls()
        builder()
    with tabs[2]:
        link_and_code()
