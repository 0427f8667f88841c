"""Requests from patrons and partners: the queue (filtered by status, topic, branch, owner), one request's
thread with take, assign, reply, note and close; requests logged by phone or at the desk; canned replies;
and, for admins, the topics and their response targets."""

import pandas as pd
import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.inbox import canned, tickets, topics

actor = ui.actor()
db = ui.db()
can_edit = actor.can(Perm.EDIT_OUTREACH)
st.title("Requests")

with db.read() as session:
    options = tickets.choices(session, actor=actor)
    replies = canned.list_replies(session, actor=actor)
topic_names, branch_names, staff = options["topics"], options["branches"], options["staff"]


OWNERS = {"anyone": "anyone", "me": "me", "nobody": "nobody yet"}
row = st.columns(4)
statuses = row[0].multiselect("Status", list(tickets.STATUS_LABELS), default=["new", "open", "waiting"], format_func=tickets.STATUS_LABELS.get, key="req-status")
topic = row[1].selectbox("Topic", list(topic_names), format_func=topic_names.get, index=None, placeholder="any topic", key="req-topic")
branch = row[2].selectbox("Branch", list(branch_names), format_func=branch_names.get, index=None, placeholder="any branch", key="req-branch")
owner = row[3].selectbox("Owner", [*OWNERS, *staff], format_func=lambda o: OWNERS.get(o) or staff[o], key="req-owner")
with ui.user_errors():
    with db.read() as session:
        rows = tickets.queue(session, actor=actor, statuses=statuses or None, topic_id=topic, branch_id=branch, unowned=owner == "nobody",
                             owner_id=actor.id if owner == "me" else owner if isinstance(owner, int) else None)
    overdue = sum(r["overdue"] for r in rows)
    st.caption(f"{ui.count(len(rows), 'request')} · {overdue} overdue")
    if rows:
        frame = pd.DataFrame(rows)
        frame["overdue"] = frame["overdue"].map({True: "overdue", False: ""})
        ui.table(ui.local_frame(frame, "created", "due"), column_order=["reference", "subject", "requester", "topic", "branch", "status", "owner", "due", "overdue"], hide_index=True)

asked = st.query_params.get("request")
choices = {r["id"]: f"{r['reference']} · {r['subject']}" for r in rows}
if asked and asked.isdigit() and int(asked) not in choices:
    choices[int(asked)] = f"Request {asked}"
chosen = st.selectbox("Open a request", list(choices), format_func=choices.get, index=list(choices).index(int(asked)) if asked and asked.isdigit() else None,
                      placeholder="choose a request", key="req-open")
if chosen is not None:
    st.query_params["request"] = str(chosen)  # stays open after an action moves it out of the filtered queue

if chosen is not None:
    with ui.user_errors():
        with db.write() as session:  # opening a thread is audited
            view = tickets.thread(session, actor=actor, request_id=chosen)
        req = view["request"]
        st.subheader(ui.md(f"{req['reference']} · {req['subject']}"))
        who = req["requester"] + (f" <{req['email']}>" if req["email"] and req["email"] != req["requester"] else "")
        st.caption(ui.md(f"From {who} · {req['came by']} · {req['topic']} · {req['branch']} · {req['status']} · owner {req['owner']} · due {ui.local(req['due'])}"
                         + (" · overdue" if req["overdue"] else "")))
        left, right = st.columns([2, 1])
        with left:
            for entry in view["entries"]:
                label = {"incoming": "From the requester", "reply": f"Reply by {entry['author']}", "note": f"Internal note by {entry['author']}"}[entry["kind"]]
                with st.container(border=True):
                    st.markdown(f"**{ui.md(label)}** · {ui.md(ui.local(entry['at']))}")
                    st.text(entry["body"])
                    if entry["remark"]:
                        st.caption(ui.md(entry["remark"]))
        with right:
            st.markdown("**Their other requests**")
            if view["other_requests"]:
                ui.table(pd.DataFrame(view["other_requests"])[["reference", "subject", "status"]], hide_index=True)
            else:
                st.caption("None.")
            st.markdown("**Their interactions**")
            if view["interactions"]:
                ui.table(ui.local_frame(pd.DataFrame(view["interactions"]), "when"), hide_index=True)
            else:
                st.caption("None logged." if req["contact_id"] else "Not a community contact.")
        if can_edit:
            ref = {"request_id": chosen}
            take, give, give_button = st.columns([1, 2, 1], vertical_alignment="bottom")
            if req["owner_id"] != actor.id and take.button("Take it", icon=":material/front_hand:", key="req-take"):
                ui.act(tickets.take, **ref)
            to = give.selectbox("Assign to", list(staff), format_func=staff.get, index=None, key="req-assign-to")
            if give_button.button("Assign", disabled=to is None, key="req-assign"):
                ui.act(tickets.assign, **ref, owner_id=to)

            def use_canned() -> None:
                picked = st.session_state.get("req-canned")
                if picked is not None:
                    st.session_state["req-reply-text"] = replies[picked]["body"]

            reply_tab, note_tab, close_tab = st.tabs(["Reply", "Internal note", "Close"])
            with reply_tab:
                st.selectbox("Start from a canned reply", list(replies), format_func=lambda r: replies[r]["name"], index=None, on_change=use_canned, key="req-canned")
                with st.form("req-reply"):
                    text = st.text_area("Reply (sent by e-mail from the library's help address)", key="req-reply-text", height=160)
                    if st.form_submit_button("Send reply", type="primary", icon=":material/send:"):
                        ui.act(tickets.reply, **ref, text=text)
            with note_tab, st.form("req-note", clear_on_submit=True):
                note = st.text_area("Note (staff only, never sent)", key="req-note-text")
                if st.form_submit_button("Add note"):
                    ui.act(tickets.add_note, **ref, text=note)
            with close_tab, st.form("req-close"):
                LOGS = {"": "nothing else", "interaction": "log an interaction with the contact", "task": "add a task for me"}
                log = st.radio("On closing", list(LOGS), format_func=LOGS.get, key="req-close-log")
                title = st.text_input("Task (when adding one)", key="req-close-task")
                due = st.date_input("Task due", value=None, key="req-close-due")
                if st.form_submit_button("Close the request", icon=":material/done_all:"):
                    ui.act(tickets.close, **ref, log=log or None, follow_up_title=title, follow_up_on=due)

if can_edit:
    with st.expander("Log a request (phone or desk)", icon=":material/add_call:"):
        with st.form("req-log"):
            channel = st.radio("How it came", list(tickets.STAFF_CHANNELS), format_func=tickets.CHANNEL_LABELS.get, horizontal=True, key="req-log-channel")
            name = st.text_input("Requester's name", key="req-log-name")
            email = st.text_input("Requester's e-mail (for replies)", key="req-log-email")
            log_topic = st.selectbox("Topic", list(topic_names), format_func=topic_names.get, index=None, key="req-log-topic")
            log_branch = st.selectbox("Branch", list(branch_names), format_func=branch_names.get, index=None, key="req-log-branch")
            subject = st.text_input("Subject", key="req-log-subject")
            body = st.text_area("What they asked", key="req-log-body")
            if st.form_submit_button("Log the request", type="primary"):
                ui.act(tickets.log_request, channel=channel, subject=subject, body=body, requester_name=name, requester_email=email, topic_id=log_topic, branch_id=log_branch)
    with st.expander("Canned replies", icon=":material/quick_phrases:"):
        with st.form("req-canned-save", clear_on_submit=True):
            canned_name = st.text_input("Name", key="req-canned-name")
            canned_body = st.text_area("Text", key="req-canned-body")
            if st.form_submit_button("Save the canned reply"):
                ui.act(canned.save_reply, name=canned_name, body=canned_body)
        for rid, saved in replies.items():
            name_col, delete_col = st.columns([4, 1])
            name_col.text(saved["name"])
            if delete_col.button("Remove", key=f"req-canned-del-{rid}"):
                ui.act(canned.delete_reply, reply_id=rid)

if actor.can(Perm.MANAGE_SETTINGS):
    with st.expander("Topics and response targets", icon=":material/settings:"):
        with db.read() as session:
            all_topics = topics.list_topics(session, actor=actor)
        if all_topics:
            shown = pd.DataFrame(all_topics)[["name", "target_hours", "active"]].rename(columns={"target_hours": "response target (hours)", "active": "offered"})
            ui.table(shown, hide_index=True)
        by_id = {t["id"]: t for t in all_topics}
        edit = st.selectbox("Change a topic", list(by_id), format_func=lambda t: by_id[t]["name"], index=None, placeholder="a new topic", key="req-topic-edit")
        current = by_id.get(edit, {"name": "", "target_hours": 48, "active": True})
        with st.form("req-topic-save"):
            topic_name = st.text_input("Topic", value=current["name"], key=f"req-topic-name-{edit}")
            hours = st.number_input("Response target (hours)", min_value=1, max_value=1440, value=int(current["target_hours"]), key=f"req-topic-hours-{edit}")
            offered = st.checkbox("Offered on the request form and the page", value=current["active"], key=f"req-topic-active-{edit}")
            if st.form_submit_button("Save the topic"):
                ui.act(topics.save_topic, topic_id=edit, name=topic_name, target_hours=hours, active=offered)
