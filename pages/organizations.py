"""Organizations: find, create, edit, tag, archive; each one's people and full timeline."""

import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.outreach import contacts, duplicates, interactions, organizations
from crmcore.outreach.tags import all_tags
from ui import outreach as widgets

actor = ui.actor()
db = ui.db()
can_edit = actor.can(Perm.EDIT_OUTREACH)
st.title("Organizations")

created = st.session_state.pop("org-created", None)
if created:
    st.success(f"Created {ui.md(created[0])}.")
    widgets.duplicate_warning(*created)

with db.read() as session:
    tags = all_tags(session, actor=actor)

search, tag, archived = st.columns([3, 2, 1], vertical_alignment="bottom")
term = search.text_input("Search name or email", key="org-search")
tag_filter = tag.selectbox("Tag", tags, index=None, key="org-tag")
show_archived = archived.checkbox("Archived too", key="org-archived")

with db.read() as session:
    rows = organizations.list_organizations(session, actor=actor, search=term, tag=tag_filter, include_archived=show_archived)
ui.table(rows, hide_index=True, column_order=["name", "sector", "email", "phone", "partner", "tags", "archived"], width="stretch")

if can_edit:
    with st.expander("New organization", icon=":material/add_business:"):
        with st.form("new-org"):
            name = st.text_input("Name", key="new-org-name")
            sector = st.text_input("Sector", key="new-org-sector")
            email = st.text_input("Email", key="new-org-email")
            phone = st.text_input("Phone", key="new-org-phone")
            website = st.text_input("Website", key="new-org-website")
            new_tags = st.multiselect("Tags", tags, accept_new_options=True, key="new-org-tags")
            partner = st.checkbox("Partner", key="new-org-partner")
            created = st.form_submit_button("Create", type="primary")
        if created:
            with ui.user_errors():
                with db.write() as session:
                    similar = duplicates.similar_organizations(session, actor=actor, name=name, email=email, phone=phone)
                    org = organizations.create_organization(
                        session, actor=actor, name=name, sector=sector, email=email, phone=phone, website=website, tags=new_tags, is_partner=partner
                    )
                ui.refresh_after_write()
                st.session_state["org-open"], st.session_state["org-created"] = org.id, (org.name, similar)
                st.rerun()

choices = {r["id"]: r["name"] for r in rows}
if st.session_state.get("org-open") not in choices:
    st.session_state.pop("org-open", None)
picked = st.selectbox("Open an organization", list(choices), format_func=choices.get, index=None, key="org-open")
if picked is None:
    st.stop()

with db.read() as session:
    org = organizations.get_organization(session, actor=actor, organization_id=picked)
    people = contacts.list_contacts(session, actor=actor, organization_id=picked, include_archived=True)
    history = interactions.timeline(session, actor=actor, organization_id=picked)

st.header(ui.md(org["name"]), divider="gray")
facts = [org["sector"], org["email"], org["phone"], org["website"], org["address"], "partner" + (f" since {org['partner_since']}" if org["partner_since"] else "") if org["is_partner"] else None, "archived" if org["archived"] else None]
st.caption(ui.md(" · ".join(str(f) for f in facts if f)))
if org["tags"]:
    st.caption(ui.md("Tags: " + ", ".join(org["tags"])))
if org["notes"]:
    st.text(org["notes"])

timeline_tab, people_tab, edit_tab = st.tabs(["Timeline", f"People ({len(people)})", "Edit"])
with timeline_tab:
    widgets.timeline(history)
with people_tab:
    ui.table(people, hide_index=True, column_order=["name", "job_title", "email", "phone", "patron", "archived"], width="stretch")
with edit_tab:
    if not can_edit:
        st.caption("Your role may view organizations but not change them.")
    else:
        with st.form(f"edit-org-{picked}"):
            values = {
                "name": st.text_input("Name", org["name"]),
                "sector": st.text_input("Sector", org["sector"] or ""),
                "email": st.text_input("Email", org["email"] or ""),
                "phone": st.text_input("Phone", org["phone"] or ""),
                "website": st.text_input("Website", org["website"] or ""),
                "address": st.text_input("Address", org["address"] or ""),
                "tags": st.multiselect("Tags", sorted({*tags, *org["tags"]}), default=org["tags"], accept_new_options=True),
                "is_partner": st.checkbox("Partner", org["is_partner"]),
                "notes": st.text_area("Notes", org["notes"] or ""),
            }
            if st.form_submit_button("Save", type="primary"):
                with ui.user_errors():
                    with db.write() as session:
                        organizations.update_organization(session, actor=actor, organization_id=picked, **values)
                    ui.refresh_after_write()
                    st.rerun()
        label = "Restore" if org["archived"] else "Archive"
        if st.button(label, key=f"archive-org-{picked}", icon=":material/archive:"):
            with db.write() as session:
                organizations.archive_organization(session, actor=actor, organization_id=picked, archived=not org["archived"])
            ui.refresh_after_write()
            st.rerun()
