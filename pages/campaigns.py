"""Campaigns → Campaigns: compose a draft, preview it for a patron, test-send it, launch or schedule it
(after a summary of who is excluded and why), cancel it, and read its results against the holdout."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pandas as pd
import streamlit as st

import ui
from ui import drafts as typed
from crmcore.admin.permissions import Perm
from crmcore.campaigns import drafts, results
from crmcore.campaigns.templates import MERGE_FIELDS
from crmcore.library import consent

NEW = "New draft"
EXCLUSION_LABELS = {
    "no_email": "no email address",
    "no_consent": "no current consent for this channel and topic",
    "suppressed": "suppressed address (hard bounce or erased)",
    "frequency_cap": "already at the weekly frequency cap",
}

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
    st.markdown(f"**{ui.md(name)}** goes to **{plan['recipients_about']:,}** patrons (about; the holdout is chosen at launch).")
    st.dataframe(
        pd.DataFrame(
            [("In the segment", plan["audience"])]
            + [(f"Excluded: {EXCLUSION_LABELS[k]}", v) for k, v in plan["excluded"].items()]
            + [("Held out (sent nothing, for measuring)", plan["holdout_about"])],
            columns=["", "patrons"],
        ),
        hide_index=True,
    )
    when = st.radio("When", ["Send now", "Schedule"], horizontal=True, key="cmp-when")
    scheduled_at = None
    if when == "Schedule":
        day = st.date_input("Day (UTC)", value=datetime.now(timezone.utc).date() + timedelta(days=1), key="cmp-day")
        at = st.time_input("Time (UTC)", value=time(9, 0), key="cmp-time")
        scheduled_at = datetime.combine(day, at, tzinfo=timezone.utc)
    if st.button("Launch", type="primary", key="cmp-confirm-launch"):
        with ui.user_errors():
            with db.write() as session:
                summary = drafts.launch(session, actor=me, campaign_id=campaign_id, scheduled_at=scheduled_at)
            later = f", scheduled for {summary['scheduled_at']}" if summary["scheduled_at"] else ""
            done(f"Launched: {summary['recipients']:,} messages queued, {summary['holdout']:,} held out{later}.", pick=campaign_id)


@st.dialog("Cancel this campaign?", on_dismiss=forget_pending)
def confirm_cancel(campaign_id: int) -> None:
    st.warning("Messages not yet sent will not be sent. This cannot be undone.")
    if st.button("Cancel the campaign", type="primary", key="cmp-confirm-cancel"):
        with ui.user_errors():
            with db.write() as session:
                stopped = drafts.cancel(session, actor=me, campaign_id=campaign_id)
            done(f"Cancelled: {stopped:,} messages will not be sent.", pick=campaign_id)


def compose_form(campaign, segment_names: dict[int, str]) -> None:
    editable = campaign is None or campaign.status == "draft"
    tag = campaign.id if campaign else "new"  # widgets of their own per campaign
    if not editable:
        st.info("This campaign has been launched; its message can no longer change.")
    seg_ids = list(segment_names)
    if not seg_ids:
        st.info("Save a segment first (Campaigns → Segments): a campaign goes to a segment.")
    with st.form(f"cmp-compose-{tag}"):
        name = st.text_input("Name", value=campaign.name if campaign else "", key=f"cmp-name-{tag}")
        segment = st.selectbox(
            "Segment", seg_ids, format_func=lambda i: segment_names[i], key=f"cmp-segment-{tag}",
            index=seg_ids.index(campaign.segment_id) if campaign and campaign.segment_id in seg_ids else 0 if seg_ids else None,
        )
        topic = st.selectbox("Topic (patrons consent per topic)", consent.TOPICS, index=consent.TOPICS.index(campaign.topic) if campaign else 0, key=f"cmp-topic-{tag}")
        with typed.kept(f"campaign-{tag}-subject"):  # what is typed survives a reload until saved
            subject = st.text_input("Subject", value=campaign.subject_template if campaign else "", key=f"cmp-subject-{tag}")
        with typed.kept(f"campaign-{tag}-body"):
            body = st.text_area("Message", value=campaign.body_template if campaign else "Dear {{ first_name }},\n\n", height=220, key=f"cmp-body-{tag}")
        holdout = st.number_input("Holdout (% of the audience sent nothing, to measure the effect)", 0.0, 50.0, campaign.holdout_pct if campaign else 10.0, 1.0, key=f"cmp-holdout-{tag}")
        saved = st.form_submit_button("Save draft", type="primary", disabled=not editable)
    st.caption("Merge fields: " + "; ".join(f"`{{{{ {k} }}}}` {ui.md(v)}" for k, v in MERGE_FIELDS.items()))
    if saved:
        with ui.user_errors():
            with db.write() as session:
                made = drafts.compose(
                    session, actor=me, name=name, segment_id=segment, topic=topic, subject=subject, body=body,
                    holdout_pct=holdout, campaign_id=campaign.id if campaign else None,
                )
            done(f"Draft saved: {made.name}.", pick=made.id)


def preview_tab(campaign) -> None:
    with db.write() as session:  # the sample shows full names: audited
        sample = drafts.sample_patrons(session, actor=me, campaign_id=campaign.id)
    if not sample:
        st.info("Nobody is in this campaign's segment yet.")
        return
    labels = dict(sample)
    patron_id = st.selectbox("Preview for", list(labels), format_func=lambda i: labels[i], key="cmp-preview-patron")
    shown = drafts.preview(db, actor=me, campaign_id=campaign.id, patron_id=patron_id)  # audited: a patron's details
    st.text(f"Subject: {shown.subject}")
    st.text(shown.text)
    with st.expander("HTML part (source)"):
        st.code(shown.html, language="html")
    if st.button("Send a test to me", key="cmp-test-send"):
        address = drafts.send_test(db, actor=me, campaign_id=campaign.id, patron_id=patron_id)
        st.success(f"Test sent to {address}.")


def launch_tab(campaign) -> None:
    if campaign.launch_summary:
        s = campaign.launch_summary
        st.write(f"Launched {s['launched_at'][:16]} UTC" + (f", scheduled for {s['scheduled_at'][:16]} UTC" if s.get("scheduled_at") else "") + ".")
        rows = [("In the segment", s["audience"])] + [(f"Excluded: {EXCLUSION_LABELS[k]}", v) for k, v in s["excluded"].items()]
        rows += [("Held out", s["holdout"]), ("Messages queued", s["recipients"])]
        st.dataframe(pd.DataFrame(rows, columns=["", "patrons"]), hide_index=True)
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
        st.dataframe(pd.DataFrame(sorted(r["failure_reasons"].items(), key=lambda kv: -kv[1]), columns=["reason", "messages"]), hide_index=True)
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
    st.dataframe(pd.DataFrame(table, columns=["group", "patrons", "active", "conversion"]), hide_index=True)
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
        st.dataframe(
            pd.DataFrame(
                [(c.id, c.name, c.status, c.topic, segment_names.get(c.segment_id, ""), c.launched_at, c.scheduled_at) for c in all_campaigns],
                columns=["id", "name", "status", "topic", "segment", "launched", "send time"],
            ),
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
    else:
        tab_compose, tab_preview, tab_launch, tab_results = st.tabs(["Message", "Preview and test", "Launch", "Results"], key="cmp-tab", on_change="rerun")  # stays open across reruns
        with tab_compose:
            compose_form(current, segment_names)
        with tab_preview, ui.user_errors():
            preview_tab(current)
        with tab_launch, ui.user_errors():
            launch_tab(current)
        with tab_results, ui.user_errors():
            results_tab(current)
