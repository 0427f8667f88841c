"""Campaigns → Campaigns: compose a draft, preview it for a patron, test-send it, launch or schedule it
(after a summary of who is excluded and why), cancel it, and read its results against the holdout."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pandas as pd
import streamlit as st

import ui
from crmcore.admin import settings
from crmcore.admin.permissions import Perm
from crmcore.campaigns import drafts, results, saved_templates
from crmcore.campaigns import templates
from crmcore.campaigns.templates import MERGE_FIELDS
from crmcore.recommendations import block
from crmcore.library import consent
from crmcore.surveys import definitions as survey_definitions
from crmcore.privacy import small_cells
from ui import drafts as typed
from ui import variants

NEW = "New draft"
AUDIENCE_LABELS = {drafts.PATRONS: "Patrons in a segment", drafts.PROSPECTS: "Prospects who signed up for the topic (Campaigns → Sign-ups)"}
EXCLUSION_LABELS = {
    "no_email": "no email address",
    "no_consent": "no current consent for this channel and topic",
    "suppressed": "suppressed address (hard bounce or erased)",
    "frequency_cap": "already at the weekly frequency cap",
    "no_phone": "no phone number",
    "bad_phone": "a phone number that cannot be texted (not a valid number)",
    "do_not_text": "on the do-not-text list (a text could not be delivered)",
}
CHANNEL_LABELS = {"email": "Email", "sms": "Text message"}

st.title("Campaigns")
st.caption("Write a message for a segment, check it, then launch it. Sending happens in the background worker.")
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("cmp-done", None):
    st.success(message)


def done(text: str, *, pick: int | None = None) -> None:
    st.session_state["cmp-done"] = text
    st.session_state.pop("cmp-pending", None)
    if pick is not None:
        st.session_state["cmp-pick-next"] = pick
    ui.refresh_after_write()
    st.rerun()


def forget_pending() -> None:
    st.session_state.pop("cmp-pending", None)


@st.dialog("Launch this campaign?", on_dismiss=forget_pending)
def confirm_launch(campaign_id: int, name: str) -> None:
    with db.read() as session:
        plan = drafts.plan(session, actor=me, campaign_id=campaign_id)
        postal_address = settings.branding(session).address
    if not postal_address:
        st.warning(
            "The library has no postal address yet (Administration → Settings): anti-spam laws in many countries require one "
            "at the foot of every message. You can launch without it, but an administrator should add it first."
        )
    st.markdown(f"**{ui.md(name)}** goes to **{plan['recipients_about']:,}** patrons (about; the holdout is chosen at launch).")
    ui.table(
        pd.DataFrame(
            [("In the segment", plan["audience"])]
            + [(f"Excluded: {EXCLUSION_LABELS[k]}", v) for k, v in plan["excluded"].items()]
            + [("Held out (sent nothing, for measuring)", plan["holdout_about"])],
            columns=["", "patrons"],
        ),
        hide_index=True,
    )
    if "text_parts_at_most" in plan:
        st.caption(f"Text message parts in all, at most: {plan['text_parts_at_most']:,} (every text as long as the longest names make it).")
    when = st.radio("When", ["Send now", "Schedule"], horizontal=True, key="cmp-when")
    scheduled_at = None
    if when == "Schedule":
        zone = ui.zone()  # typed in the library's time, stored in UTC
        day = st.date_input(f"Day ({zone.key})", value=datetime.now(zone).date() + timedelta(days=1), key="cmp-day")
        at = st.time_input(f"Time ({zone.key})", value=time(9, 0), key="cmp-time")
        scheduled_at = ui.typed_time(day, at)
    if st.button("Launch", type="primary", key="cmp-confirm-launch"):
        with ui.user_errors():
            with db.write() as session:
                summary = drafts.launch(session, actor=me, campaign_id=campaign_id, scheduled_at=scheduled_at)
            later = f", scheduled for {ui.local(datetime.fromisoformat(str(summary['scheduled_at'])))}" if summary["scheduled_at"] else ""
            done(f"Launched: {summary['recipients']:,} messages queued, {summary['holdout']:,} held out{later}.", pick=campaign_id)


@st.dialog("Cancel this campaign?", on_dismiss=forget_pending)
def confirm_cancel(campaign_id: int) -> None:
    st.warning("Messages not yet sent will not be sent. This cannot be undone.")
    if st.button("Cancel the campaign", type="primary", key="cmp-confirm-cancel"):
        with ui.user_errors():
            with db.write() as session:
                stopped = drafts.cancel(session, actor=me, campaign_id=campaign_id)
            done(f"Cancelled: {stopped:,} messages will not be sent.", pick=campaign_id)


def add_field(tag: str, target: str) -> None:
    """An insert button's callback: the chosen merge field appended to the subject or the message."""
    st.session_state[target] = templates.insert_field(st.session_state.get(target, ""), st.session_state[f"cmp-field-{tag}"])


def load_template(tag: str, subject_key: str, body_key: str) -> None:
    """The Load button's callback: the chosen saved template's subject and message put in the editor (saved with the draft)."""
    chosen = st.session_state.get(f"cmp-template-{tag}")
    try:
        with db.read() as session:
            row = saved_templates.get(session, actor=me, template_id=chosen)
    except LookupError as exc:
        st.session_state["cmp-template-error"] = str(exc)
        return
    st.session_state[subject_key], st.session_state[body_key] = row.subject, row.body
    st.session_state["cmp-template-loaded"] = f"Loaded the template {row.name!r}: save the draft to keep it."


def template_picker(tag: str, subject_key: str, body_key: str) -> None:
    with db.read() as session:
        saved = {t.id: t.name for t in saved_templates.list_templates(session, actor=me)}
    if not saved:
        st.caption("No saved templates yet: write a message below and save it as a template to use it again.")
        return
    pick_col, load_col = st.columns([5, 2], vertical_alignment="bottom")
    pick_col.selectbox("Start from a saved template", list(saved), format_func=lambda i: saved[i], key=f"cmp-template-{tag}")
    load_col.button("Load template", icon=":material/file_open:", on_click=load_template, args=(tag, subject_key, body_key), key=f"cmp-template-load-{tag}", width="stretch",
                    help="Replaces the subject and the message in the editor.")
    if error := st.session_state.pop("cmp-template-error", None):
        st.error(error)
    if loaded := st.session_state.pop("cmp-template-loaded", None):
        st.success(loaded)


def manage_templates() -> None:
    with db.read() as session:
        saved = saved_templates.list_templates(session, actor=me)
    if not saved:
        return
    with st.expander(f"Saved templates ({len(saved)})"):
        ui.table(pd.DataFrame([(t.name, t.subject, ui.local(t.updated_at)) for t in saved], columns=["name", "subject", "changed"]), hide_index=True)
        names = {t.id: t.name for t in saved}
        gone = st.selectbox("Template", list(names), format_func=lambda i: names[i], key="cmp-template-delete-pick")
        if st.button("Delete template", icon=":material/delete:", key="cmp-template-delete", help="Campaigns started from it keep their own copy of the message."):
            with ui.user_errors():
                with db.write() as session:
                    name = saved_templates.delete(session, actor=me, template_id=gone)
                done(f"Template deleted: {name}.")


def compose_form(campaign, segment_names: dict[int, str]) -> None:
    editable = campaign is None or campaign.status == "draft"
    tag = campaign.id if campaign else "new"  # widgets of their own per campaign
    if not editable:
        st.info("This campaign has been launched; its message can no longer change.")
    seg_ids = list(segment_names)
    if not seg_ids:
        st.info("Save a segment first (Campaigns → Segments): a campaign goes to a segment, or to the prospects who signed up.")
    subject_key, body_key = f"cmp-subject-{tag}", f"cmp-body-{tag}"
    with db.read() as session:
        survey_names = survey_definitions.choices(session, actor=me)
    # The editor's text lives in the session (not `value=`), so the insert buttons can add to it.
    st.session_state.setdefault(subject_key, campaign.subject_template if campaign else "")
    st.session_state.setdefault(body_key, campaign.body_template if campaign else "Dear {{ first_name }},\n\n")
    if editable:
        template_picker(tag, subject_key, body_key)
    channel = st.radio("Channel", list(CHANNEL_LABELS), format_func=CHANNEL_LABELS.get, horizontal=True, disabled=not editable, key=f"cmp-channel-{tag}",
                       index=list(CHANNEL_LABELS).index(campaign.channel) if campaign else 0)
    with st.form(f"cmp-compose-{tag}"):
        name = st.text_input("Name", value=campaign.name if campaign else "", key=f"cmp-name-{tag}")
        audience = st.radio("Send to", drafts.AUDIENCES, format_func=AUDIENCE_LABELS.get, horizontal=True, key=f"cmp-audience-{tag}",
                            index=drafts.AUDIENCES.index(campaign.audience) if campaign else 0)
        segment = st.selectbox(
            "Segment", seg_ids, format_func=lambda i: segment_names[i], key=f"cmp-segment-{tag}",
            index=seg_ids.index(campaign.segment_id) if campaign and campaign.segment_id in seg_ids else 0 if seg_ids else None,
        )
        topic = st.selectbox("Topic (patrons consent per topic)", consent.TOPICS, index=consent.TOPICS.index(campaign.topic) if campaign else 0, format_func=lambda t: consent.TOPIC_LABELS[t].capitalize(), key=f"cmp-topic-{tag}")
        subject = ""
        if channel == "email":  # a text has no subject
            with typed.kept(f"campaign-{tag}-subject"):  # what is typed survives a reload until saved
                subject = st.text_input("Subject", key=subject_key)
        with typed.kept(f"campaign-{tag}-body"):
            body = st.text_area("Message", height=220, key=body_key)
        field_col, body_col, subject_col = st.columns([3, 2, 2], vertical_alignment="bottom")
        field_col.selectbox(
            "Merge field", list(MERGE_FIELDS), format_func=lambda k: f"{{{{ {k} }}}} — {MERGE_FIELDS[k]}", key=f"cmp-field-{tag}",
            help="Filled in for each patron when the message is sent.",
        )
        body_col.form_submit_button("Insert in message", icon=":material/add:", disabled=not editable, on_click=add_field, args=(tag, body_key), width="stretch")
        subject_col.form_submit_button("Insert in subject", icon=":material/add:", disabled=not editable or channel != "email", on_click=add_field, args=(tag, subject_key), width="stretch")
        st.caption("A field is added at the end of the text (the editor cannot tell where the cursor is): move it where you want it.")
        holdout = st.number_input("Holdout (% of the audience sent nothing, to measure the effect)", 0.0, 50.0, campaign.holdout_pct if campaign else 10.0, 1.0, key=f"cmp-holdout-{tag}")
        survey_ids = [None, *survey_names]
        survey = st.selectbox(
            "Survey its {{ survey_link }} opens", survey_ids, format_func=lambda i: "No survey" if i is None else survey_names[i], key=f"cmp-survey-{tag}",
            index=survey_ids.index(campaign.survey_id) if campaign and campaign.survey_id in survey_ids else 0,
        )
        fallbacks = list(block.FALLBACKS)
        fallback = st.radio(
            "Recommendations for patrons without interests", fallbacks, format_func=lambda f: block.FALLBACKS[f].capitalize(), horizontal=True,
            index=fallbacks.index(campaign.recommendations_fallback) if campaign else 0, key=f"cmp-fallback-{tag}",
            help="Only for a message with {{ recommendations }}: patrons with no interests known get the library's picks, or no list at all.",
        )
        saved = st.form_submit_button("Save draft", type="primary", disabled=not editable)
        with st.expander("Save this message as a template"):
            template_name = st.text_input("Template name", key=f"cmp-template-name-{tag}", help="Saved: the subject and the message, to start other campaigns from.")
            replace = st.checkbox("Replace a template of the same name", key=f"cmp-template-replace-{tag}")
            keep = st.form_submit_button("Save as template", icon=":material/bookmark_add:")
    if keep:
        with ui.user_errors():
            with db.write() as session:
                row = saved_templates.save(session, actor=me, name=template_name, subject=subject, body=body, replace=replace)
            done(f"Template saved: {row.name}.")
    if saved:
        with ui.user_errors():
            with db.write() as session:
                made = drafts.compose(
                    session, actor=me, name=name, segment_id=segment, topic=topic, subject=subject, body=body,
                    holdout_pct=holdout, channel=channel, campaign_id=campaign.id if campaign else None, survey_id=survey,
                    recommendations_fallback=fallback, audience=audience,
                )
            done(f"Draft saved: {made.name}.", pick=made.id)
    if channel == "sms":
        with ui.user_errors(), db.read() as session:
            length = drafts.text_length(session, actor=me, body=st.session_state.get(body_key, ""))
            st.caption(f"Length with the longest names on record (and the stop line): {length.describe()}.")


def preview_tab(campaign) -> None:
    with db.write() as session:  # the sample shows full names: audited
        sample = drafts.sample_patrons(session, actor=me, campaign_id=campaign.id)
    if campaign.audience == drafts.PROSPECTS:
        st.caption("A campaign to prospects (people who signed up, without a card): shown with sample details.")
        shown = templates.render(subject=campaign.subject_template, body=campaign.body_template, context=templates.SAMPLE_CONTEXT)
        st.text(f"Subject: {shown.subject}")
        st.text(shown.text)
        return
    if not sample:
        st.info("Nobody is in this campaign's segment yet.")
        return
    labels = dict(sample)
    patron_id = st.selectbox("Preview for", list(labels), format_func=lambda i: labels[i], key="cmp-preview-patron")
    language = variants.preview_language(languages=variants.languages_of(owner="campaign", owner_id=campaign.id), key="cmp-preview-language")
    shown = drafts.preview(db, actor=me, campaign_id=campaign.id, patron_id=patron_id, language=language)  # audited: a patron's details
    if campaign.channel == "sms":
        st.text(shown.text)  # the text message as the phone shows it
    else:
        st.text(f"Subject: {shown.subject}")
        as_mail, as_text, as_source = st.tabs(["As a mail client shows it", "Text part", "HTML source"])
        with as_mail:
            # Its own origin (a data: address), no script, no request: see templates.preview_address.
            st.iframe(templates.preview_address(shown.html), height=460)
        with as_text:
            st.text(shown.text)
        with as_source:
            st.code(shown.html, language="html")
    to_phone = "your phone number (My account)" if campaign.channel == "sms" else "your email address"
    if st.button("Send a test to me", key="cmp-test-send", help=f"Sends this preview to {to_phone}; it is not a campaign message."):
        sent_to = drafts.send_test(db, actor=me, campaign_id=campaign.id, patron_id=patron_id, language=language)
        st.success(f"Test sent to {ui.md(sent_to)}.")


def launch_tab(campaign) -> None:
    if campaign.launch_summary:
        s = campaign.launch_summary
        st.write(f"Launched {ui.local(datetime.fromisoformat(s['launched_at']))}"
                 + (f", scheduled for {ui.local(datetime.fromisoformat(s['scheduled_at']))}" if s.get("scheduled_at") else "") + ".")
        rows = [("In the segment", s["audience"])] + [(f"Excluded: {EXCLUSION_LABELS[k]}", v) for k, v in s["excluded"].items()]
        rows += [("Held out", s["holdout"]), ("Messages queued", s["recipients"])]
        ui.table(pd.DataFrame(rows, columns=["", "patrons"]), hide_index=True)
    if not me.can(Perm.LAUNCH_CAMPAIGNS):
        st.info("Launching needs a manager or an administrator.")
        return
    if campaign.status == "draft" and st.button("Launch…", type="primary", key="cmp-launch"):
        st.session_state["cmp-pending"] = ("launch", campaign.id)
    if campaign.status in ("draft", "scheduled", "sending") and st.button("Cancel campaign…", key="cmp-cancel"):
        st.session_state["cmp-pending"] = ("cancel", campaign.id)
    pending = st.session_state.get("cmp-pending")
    if pending == ("launch", campaign.id):
        confirm_launch(campaign.id, campaign.name)
    elif pending == ("cancel", campaign.id):
        confirm_cancel(campaign.id)


def _conversion_chart(campaign, r: dict) -> None:
    """Conversion by day since sending, recipients against holdout: lines, a one-line summary, the table and its CSV."""
    import altair as alt

    with db.read() as session:
        by_day = pd.DataFrame(results.conversion_by_day(session, actor=me, campaign_id=campaign.id))
    if by_day.empty:
        st.caption("Conversion by day appears from the first full day after sending.")
        return
    last = by_day[by_day["day"] == by_day["day"].max()].set_index("group")["conversion %"]
    summary = f"By day {int(by_day['day'].max())} of {r['window_days']}: " + ", ".join(f"{g.lower()} {v:.1f} %" for g, v in last.items()) + " active at the library."
    st.markdown("**Conversion by day since sending**")
    chart = (
        alt.Chart(by_day, title=alt.Title("Conversion by day since sending", subtitle=summary))
        .mark_line(point=True)
        .encode(
            x=alt.X("day:Q", title="Days since sending"),
            y=alt.Y("conversion %:Q", title="Patrons active at the library (%)"),
            color=alt.Color("group:N", title="Group", sort=["Recipients", "Holdout"]),
            strokeDash=alt.StrokeDash("group:N", sort=["Recipients", "Holdout"], legend=None),
            tooltip=["group", "day", "patrons", "active", "conversion %"],
        )
    )
    st.altair_chart(chart, width="stretch")
    st.caption(summary)
    with st.expander("The figures by day"):
        ui.table(by_day, hide_index=True)
        ui.download_buttons(by_day, name=f"campaign-{campaign.id}-conversion-by-day", key="cmp-by-day")


def results_tab(campaign) -> None:
    with db.read() as session:
        r = results.results(session, actor=me, campaign_id=campaign.id)
    st.button("Refresh", icon=":material/refresh:", key="cmp-refresh", help="Read the latest figures: the worker sends in the background.")
    cols = st.columns(6)
    for col, key in zip(cols, ("audience", "holdout", "sent", "failed", "unknown", "unsubscribed")):
        col.metric(key.title(), f"{r[key]:,}")
    if r["queued"] or r["skipped"] or r["cancelled"]:
        st.caption(f"Still queued: {r['queued']:,} · skipped at send time (consent gone): {r['skipped']:,} · cancelled: {r['cancelled']:,}")
    if r["failure_reasons"]:
        st.caption("Failed, and why:")
        ui.table(pd.DataFrame(sorted(r["failure_reasons"].items(), key=lambda kv: -kv[1]), columns=["reason", "messages"]), hide_index=True)
    if r["queued"]:
        ui.sending_paused()
    if r["unknown"]:
        st.warning(f"{r['unknown']:,} messages were in flight when a worker stopped: they may or may not have arrived, and are never resent.")
    if "recipients_n" not in r:
        return
    st.subheader("Conversion")
    st.caption(
        f"Share of patrons with any library activity in the {r['window_days']} days after {r['window_start']:%d %b %Y}; "
        "recipients against the holdout (sent nothing). No tracking pixels: this is measured from library use."
        + ("" if r["window_complete"] else " The window is still open: figures will change.")
    )
    pct = lambda v: "–" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    table = [
        ("Recipients", r["recipients_n"], r["recipients_converted"], pct(r["recipients_rate"])),
        ("Holdout", r["holdout_n"], r["holdout_converted"], pct(r["holdout_rate"])),
    ]
    ui.table(pd.DataFrame(table, columns=["group", "patrons", "active", "conversion"]), hide_index=True)
    _conversion_chart(campaign, r)
    if "liked_recipients_n" in r:
        with db.read() as session:
            k = int(settings.get(session, "small_cell_k"))
        shown = lambda n, x: (small_cells.label(k), "–") if small_cells.is_small(n, k) or small_cells.is_small(x, k) else (f"{x:,}", pct(x / n if n else None))  # noqa: E731
        st.markdown("**Borrowing in the recommended categories**")
        st.caption(f"Of the patrons with interests, the share who borrowed in one of their top categories in the {r['window_days']} days after sending"
                   " (categories only, kept for patrons with history opt-in; never titles).")
        liked = [(g, small_cells.count(r[f"liked_{key}_n"], k), *shown(r[f"liked_{key}_n"], r[f"liked_{key}_borrowed"])) for g, key in (("Recipients", "recipients"), ("Holdout", "holdout"))]
        ui.table(pd.DataFrame(liked, columns=["group", "patrons with interests", "borrowed in them", "share"]), hide_index=True)
    if "lift" in r:
        st.metric("Lift (percentage points)", f"{100 * r['lift']:+.1f}", help="Recipients' conversion minus the holdout's.")
        st.caption(f"95 % confidence interval (Newcombe): {100 * r['lift_low']:+.1f} to {100 * r['lift_high']:+.1f} points.")
        if r["relative"]:
            rel, lo, hi = r["relative"]
            st.caption(f"Relative lift {100 * rel:+.0f} % (95 % CI {100 * lo:+.0f} % to {100 * hi:+.0f} %).")


with ui.user_errors():
    with db.read() as session:
        all_campaigns = drafts.list_campaigns(session, actor=me)
        segment_names = drafts.segment_choices(session, actor=me)
    if all_campaigns:
        ui.table(
            pd.DataFrame(
                [(c.id, c.name, c.status, c.topic, segment_names.get(c.segment_id, "") if c.audience == drafts.PATRONS else "prospects", c.launched_at, c.scheduled_at) for c in all_campaigns],
                columns=["id", "name", "status", "topic", "segment", "launched", "send time"],
            ).pipe(ui.local_frame, "launched", "send time"),
            hide_index=True,
        )
    by_id = {c.id: c for c in all_campaigns}
    options = [NEW, *by_id]
    # Come back to the campaign last open (widget state is dropped when the user visits another page).
    nxt = st.session_state.pop("cmp-pick-next", None) or (st.session_state.get("cmp-last") if "cmp-pick" not in st.session_state else None)
    if nxt in by_id:
        st.session_state["cmp-pick"] = nxt
    # Labels must not change while a campaign is open (a changed label resets the widget): no status here.
    picked = st.selectbox("Campaign", options, format_func=lambda o: o if o == NEW else f"{by_id[o].name} (#{o})", key="cmp-pick")
    st.session_state["cmp-last"] = picked
    current = None if picked == NEW else by_id[picked]
    if current is None:
        compose_form(None, segment_names)
        manage_templates()
    else:
        tab_compose, tab_preview, tab_launch, tab_results = st.tabs(["Message", "Preview and test", "Launch", "Results"], key="cmp-tab", on_change="rerun")  # stays open across reruns
        with tab_compose:
            compose_form(current, segment_names)
            variants.editor(owner="campaign", owner_id=current.id, editable=current.status == "draft", done=done, subject=current.channel != "sms")
            manage_templates()
        with tab_preview, ui.user_errors():
            preview_tab(current)
        with tab_launch, ui.user_errors():
            launch_tab(current)
        with tab_results, ui.user_errors():
            results_tab(current)
