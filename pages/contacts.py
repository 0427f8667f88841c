"""Community contacts: people met in the community (patrons or not); create, edit, tag, archive, timeline."""

import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.outreach import cleaning, contacts, duplicates, interactions, organizations
from crmcore.outreach.tags import all_tags
from ui import outreach as widgets

actor = ui.actor()
db = ui.db()
can_edit = actor.can(Perm.EDIT_OUTREACH)
st.title("Contacts")

created = st.session_state.pop("contact-created", None)
if created:
    st.success(f"Created {ui.md(created[0])}.")
    widgets.duplicate_warning(*created)

with db.read() as session:
    tags = all_tags(session, actor=actor)
    orgs = organizations.organization_choices(session, actor=actor)

search, tag, archived = st.columns([3, 2, 1], vertical_alignment="bottom")
term = search.text_input("Search name or email", key="contact-search")
tag_filter = tag.selectbox("Tag", tags, index=None, key="contact-tag")
show_archived = archived.checkbox("Archived too", key="contact-archived")

with db.read() as session:
    rows = contacts.list_contacts(session, actor=actor, search=term, tag=tag_filter, include_archived=show_archived)
ui.table(rows, hide_index=True, column_order=["name", "organization", "job_title", "email", "phone", "patron", "archived"], width="stretch")


def contact_fields(current: dict, prefix: str) -> dict:
    """The contact form's widgets; returns the values typed."""
    org_ids = list(orgs)
    if current.get("organization_id") and current["organization_id"] not in orgs:
        org_ids.append(current["organization_id"])
    return {
        "first_name": st.text_input("First name", current.get("first_name") or "", key=f"{prefix}-first"),
        "last_name": st.text_input("Last name", current.get("last_name") or "", key=f"{prefix}-last"),
        "organization_id": st.selectbox(
            "Organization", org_ids, format_func=lambda i: orgs.get(i, current.get("organization_name") or str(i)),
            index=org_ids.index(current["organization_id"]) if current.get("organization_id") else None, key=f"{prefix}-org",
        ),
        "job_title": st.text_input("Job title", current.get("job_title") or "", key=f"{prefix}-job"),
        "email": st.text_input("Email", current.get("email") or "", key=f"{prefix}-email"),
        "phone": st.text_input("Phone", current.get("phone") or "", key=f"{prefix}-phone"),
        "patron_ils_id": st.text_input("Patron ILS id (if they are a patron)", current.get("patron_ils_id") or "", key=f"{prefix}-patron"),
        "tags": st.multiselect("Tags", sorted({*tags, *current.get("tags", [])}), default=current.get("tags", []), accept_new_options=True, key=f"{prefix}-tags"),
        "notes": st.text_area("Notes", current.get("notes") or "", key=f"{prefix}-notes"),
    }


if can_edit:
    with st.expander("New contact", icon=":material/person_add:"):
        with st.form("new-contact"):
            values = contact_fields({}, "new-contact")
            created = st.form_submit_button("Create", type="primary")
        if created:
            with ui.user_errors():
                with db.write() as session:
                    similar = duplicates.similar_contacts(
                        session, actor=actor, first_name=values["first_name"], last_name=values["last_name"], email=values["email"], phone=values["phone"]
                    )
                    contact = contacts.create_contact(session, actor=actor, **values)
                ui.refresh_after_write()
                name = cleaning.full_name(contact.first_name, contact.last_name)
                st.session_state["contact-open"], st.session_state["contact-created"] = contact.id, (name, similar)
                st.rerun()

choices = {r["id"]: r["name"] + (f" ({r['organization']})" if r["organization"] else "") for r in rows}
if st.session_state.get("contact-open") not in choices:
    st.session_state.pop("contact-open", None)
picked = st.selectbox("Open a contact", list(choices), format_func=choices.get, index=None, key="contact-open")
if picked is None:
    st.stop()

with db.read() as session:
    person = contacts.get_contact(session, actor=actor, contact_id=picked)
    history = interactions.timeline(session, actor=actor, contact_id=picked)

st.header(ui.md(person["name"]), divider="gray")
facts = [person["job_title"], person["organization_name"], person["email"], person["phone"], f"patron {person['patron_ils_id']}" if person["patron_ils_id"] else None, "archived" if person["archived"] else None]
st.caption(ui.md(" · ".join(f for f in facts if f)))
if person["tags"]:
    st.caption(ui.md("Tags: " + ", ".join(person["tags"])))
if person["notes"]:
    st.text(person["notes"])

timeline_tab, edit_tab = st.tabs(["Timeline", "Edit"])
with timeline_tab:
    widgets.timeline(history)
with edit_tab:
    if not can_edit:
        st.caption("Your role may view contacts but not change them.")
    else:
        with st.form(f"edit-contact-{picked}"):
            values = contact_fields(person, f"edit-contact-{picked}")
            if st.form_submit_button("Save", type="primary"):
                with ui.user_errors():
                    with db.write() as session:
                        contacts.update_contact(session, actor=actor, contact_id=picked, **values)
                    ui.refresh_after_write()
                    st.rerun()
        label = "Restore" if person["archived"] else "Archive"
        if st.button(label, key=f"archive-contact-{picked}", icon=":material/archive:"):
            with db.write() as session:
                contacts.archive_contact(session, actor=actor, contact_id=picked, archived=not person["archived"])
            ui.refresh_after_write()
            st.rerun()
