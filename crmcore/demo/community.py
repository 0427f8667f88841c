"""The demo library's community side: 150 organizations, their contacts, 600 interactions, follow-ups, tasks.

Interactions are attributed to staff accounts that already exist (none on a fresh install: then to
nobody). The demo never creates staff accounts: there are no default credentials.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import numpy as np
from sqlalchemy import Connection, select

from crmcore.bulk import BulkWriter
from crmcore.models import (
    Contact,
    Interaction,
    InteractionContact,
    InteractionOrganization,
    InteractionTag,
    Organization,
    OrganizationTag,
    StaffUser,
    Tag,
    Task,
)

ORGANIZATIONS = 150
ENTERED_TWICE = 5  # organizations, and contacts, entered a second time under a variant name
VARIANTS = [lambda n: f"The {n}", lambda n: n.replace(" and ", " & ") if " and " in n else f"{n} Inc.", lambda n: n.upper(), lambda n: n.replace("St. ", "Saint ") if "St. " in n else n + "."]
INTERACTIONS = 600
TASKS = 40
TAGS = ["literacy", "esl", "seniors", "stem", "early childhood", "job seekers", "arts", "health", "immigrants",
        "teens", "summer reading", "digital skills", "food security", "veterans"]
# sector: (name patterns, tags it tends to carry)
SECTORS = {
    "school": (["{place} Elementary School", "{place} Middle School", "{place} High School PTA"], ["literacy", "teens", "summer reading", "stem"]),
    "nonprofit": (["{place} Community Center", "{place} Neighborhood Association", "{surname} Family Foundation",
                   "{place} Food Pantry", "{place} Literacy Coalition"], ["food security", "literacy", "immigrants", "esl"]),
    "government": (["{place} Senior Services", "{place} Parks and Recreation", "{place} Workforce Center"], ["seniors", "job seekers", "veterans"]),
    "health": (["{place} Family Clinic", "{place} Health Collaborative"], ["health", "early childhood"]),
    "faith": (["{place} Interfaith Council", "St. {surname}'s Parish"], ["food security", "seniors"]),
    "business": (["{surname} & Sons Hardware", "{place} Chamber of Commerce", "{place} Credit Union"], ["job seekers", "digital skills"]),
    "higher_ed": (["{place} Community College", "{place} Adult Learning Center"], ["esl", "digital skills", "job seekers"]),
    "arts": (["{place} Arts Council", "{place} Youth Orchestra", "{place} Historical Society"], ["arts", "teens"]),
}
PLACES = ["Downtown", "Old Town", "Riverside", "Mill District", "Northgate", "Lakeview", "Eastwood", "Harbor Flats",
          "Southside", "Fairground", "Hillcrest", "Orchard Hills", "Cedar Park", "Maple Grove", "Union Square"]
SURNAMES = ["Alvarez", "Brennan", "Chowdhury", "Delgado", "Eriksen", "Fofana", "Goldberg", "Hoang", "Ibarra",
            "Jablonski", "Kaur", "Lindqvist", "Mbeki", "Navarro", "Osei", "Pereira", "Quinn", "Rahman"]
FIRST = ["Alex", "Beatriz", "Chen", "Dana", "Esther", "Farid", "Gwen", "Hector", "Ines", "Jamal", "Keiko", "Lamar",
         "Marisol", "Nadia", "Owen", "Pilar", "Rashid", "Sunita", "Tobias", "Vera", "Abdul", "Brigid", "Cosmo", "Dolores",
         "Emeka", "Fiona", "Gustavo", "Halima", "Ivo", "Josefina", "Kwame", "Lucia", "Mateus", "Nkechi", "Oskar", "Paloma"]
TITLES = ["Principal", "Librarian", "Program Director", "Volunteer Coordinator", "Executive Director", "Teacher",
          "Outreach Manager", "Pastor", "Owner", "Community Liaison", "Case Manager"]
# Keys of crmcore.outreach.interactions.KINDS, weighted by how often each happens.
KINDS = {"meeting": 0.28, "event_table": 0.2, "presentation": 0.1, "phone": 0.16, "email": 0.14, "visit": 0.08, "partnership": 0.04}
NOTES = {
    "meeting": ["Met {who} to plan a joint program for the spring.", "Coffee with {who}: they want a library card drive."],
    "event_table": ["Library table at the {place} street fair; signed up families for cards.", "Tabled at the {place} back-to-school night."],
    "presentation": ["Presented library e-resources to {org} staff.", "Talk on job-search databases at {org}."],
    "phone": ["Called {who} about hosting story time.", "{who} called about ESL conversation groups."],
    "email": ["Sent {who} the summer reading flyer.", "Emailed {who} the partnership agreement draft."],
    "visit": ["Visited {org} with the bookmobile.", "Site visit to {org} to see the space for a pop-up library."],
    "partnership": ["Signed a partnership with {org} for after-school homework help.", "Renewed our partnership with {org}."],
}
OUTCOMES = ["Agreed on a date", "Will follow up next month", "Interested; needs board approval", "Not now", "Partnership confirmed", None]


def _entered_twice(orgs: list[dict], rng: np.random.Generator) -> None:
    """Make the last few organizations second entries of earlier ones (a variant name, the same email or phone),
    so the Duplicates page has something true to find."""
    for org in orgs[-ENTERED_TWICE:]:
        first = orgs[int(rng.integers(0, len(orgs) - ENTERED_TWICE))]
        first["archived"] = org["archived"] = False
        variant = VARIANTS[int(rng.integers(0, len(VARIANTS)))](first["name"])
        same = {"email": first["email"]} if rng.random() < 0.5 else {"phone": first["phone"]}
        org.update(name=variant, sector=first["sector"], zone_id=first["zone_id"], **same)


def _at(day: date, rng: np.random.Generator) -> datetime:
    return datetime.combine(day, time(int(rng.integers(9, 18)), int(rng.integers(0, 60))), tzinfo=timezone.utc)


def generate(conn: Connection, *, rng: np.random.Generator, today: date, zones: int) -> dict[str, int]:
    """Insert the community records on `conn` (inside the caller's transaction); returns the counts."""
    staff = [row[0] for row in conn.execute(select(StaffUser.id).where(StaffUser.is_active).order_by(StaffUser.id))]
    tag_ids = {name: i + 1 for i, name in enumerate(TAGS)}
    conn.execute(Tag.__table__.insert(), [{"id": i, "name": n} for n, i in tag_ids.items()])
    sectors = list(SECTORS)
    orgs, org_tags, names = [], set(), set()
    for org_id in range(1, ORGANIZATIONS + 1):
        sector = sectors[int(rng.integers(0, len(sectors)))]
        patterns, likely_tags = SECTORS[sector]
        for _ in range(30):  # a real directory rarely holds the same name twice: draw again
            place, surname = PLACES[int(rng.integers(0, len(PLACES)))], SURNAMES[int(rng.integers(0, len(SURNAMES)))]
            name = patterns[int(rng.integers(0, len(patterns)))].format(place=place, surname=surname)
            if name not in names:
                break
        if name in names:
            name = f"{name} ({org_id})"
        names.add(name)
        partner = bool(rng.random() < 0.3)
        created = _at(today - timedelta(days=int(rng.integers(30, 1500))), rng)
        slug = "".join(ch for ch in name.lower() if ch.isalnum())[:30]
        orgs.append({
            "id": org_id, "name": name, "sector": sector, "email": f"info@{slug}.example.org",
            "phone": f"+1312555{int(rng.integers(100, 200)):04d}", "website": f"https://{slug}.example.org",
            "address": f"{int(rng.integers(1, 4000))} {place} Avenue", "zone_id": int(rng.integers(1, zones + 1)),
            "notes": None, "is_partner": partner, "archived": bool(rng.random() < 0.03),
            "partner_since": (today - timedelta(days=int(rng.integers(10, 1400)))) if partner else None,
            "created_at": created, "updated_at": created,
        })
        for tag in rng.choice(likely_tags, size=int(rng.integers(1, 3)), replace=False).tolist():
            org_tags.add((org_id, tag_ids[tag]))
    _entered_twice(orgs, rng)
    conn.execute(Organization.__table__.insert(), orgs)
    conn.execute(OrganizationTag.__table__.insert(), [{"organization_id": o, "tag_id": t} for o, t in sorted(org_tags)])

    contacts, people = [], set()
    for org in orgs:
        for _ in range(int(rng.integers(1, 4))):
            for _ in range(30):  # the same full name twice would read as one person entered twice
                first, last = FIRST[int(rng.integers(0, len(FIRST)))], SURNAMES[int(rng.integers(0, len(SURNAMES)))]
                if (first, last) not in people:
                    break
            people.add((first, last))
            contacts.append({
                "id": len(contacts) + 1, "first_name": first, "last_name": last,
                "email": f"{first.lower()}.{last.lower()}@{'example.net' if rng.random() < 0.5 else 'example.org'}",
                "phone": f"+1773555{int(rng.integers(100, 200)):04d}" if rng.random() < 0.6 else None,
                "job_title": TITLES[int(rng.integers(0, len(TITLES)))], "organization_id": org["id"],
                "created_at": org["created_at"], "updated_at": org["created_at"],
            })
    for contact in contacts[-ENTERED_TWICE:]:  # a few people entered twice, as happens: a nickname, the same address
        first = contacts[int(rng.integers(0, len(contacts) - ENTERED_TWICE))]
        contact.update(first_name=first["first_name"][:-1] or first["first_name"], last_name=first["last_name"], email=first["email"], phone=first["phone"])
    conn.execute(Contact.__table__.insert(), contacts)
    by_org: dict[int, list[dict]] = {}
    for contact in contacts:
        by_org.setdefault(contact["organization_id"], []).append(contact)

    kinds, weights = list(KINDS), np.array(list(KINDS.values()))
    interactions, links_org, links_contact, links_tag, tasks = [], [], [], [], []
    for interaction_id in range(1, INTERACTIONS + 1):
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        org = orgs[int(rng.integers(0, len(orgs)))]
        person = by_org[org["id"]][int(rng.integers(0, len(by_org[org["id"]])))]
        day = today - timedelta(days=int(rng.integers(0, 730)))
        who = f"{person['first_name']} {person['last_name']} ({org['name']})"
        note = NOTES[kind][int(rng.integers(0, len(NOTES[kind])))].format(who=who, org=org["name"], place=PLACES[int(rng.integers(0, len(PLACES)))])
        staff_id = staff[int(rng.integers(0, len(staff)))] if staff else None
        follow_up = day + timedelta(days=int(rng.integers(7, 45))) if rng.random() < 0.25 else None
        done = _at(follow_up, rng) if follow_up and follow_up < today - timedelta(days=3) and rng.random() < 0.7 else None
        at = _at(day, rng)
        tabling = kind == "event_table"
        interactions.append({
            "id": interaction_id, "occurred_at": at, "kind": kind, "staff_id": staff_id, "notes": note,
            "outcome": OUTCOMES[int(rng.integers(0, len(OUTCOMES)))], "follow_up_on": follow_up,
            "follow_up_assignee_id": staff_id if follow_up else None, "follow_up_done_at": done,
            "cards_issued": int(rng.poisson(6)) if tabling else 0, "signups": int(rng.poisson(9)) if tabling else 0,
            "created_at": at, "updated_at": at,
        })
        links_org.append({"interaction_id": interaction_id, "organization_id": org["id"]})
        links_contact.append({"interaction_id": interaction_id, "contact_id": person["id"]})
        for tag in rng.choice(TAGS, size=int(rng.integers(0, 3)), replace=False).tolist():
            links_tag.append({"interaction_id": interaction_id, "tag_id": tag_ids[tag]})
        if len(tasks) < TASKS and rng.random() < 0.15:
            due = day + timedelta(days=int(rng.integers(3, 60)))
            tasks.append({
                "id": len(tasks) + 1, "title": f"Follow up with {org['name']}"[:200], "notes": None, "due_on": due,
                "assignee_id": staff_id, "created_by_id": staff_id, "organization_id": org["id"], "contact_id": person["id"],
                "interaction_id": interaction_id, "done_at": _at(due, rng) if due < today and rng.random() < 0.6 else None,
                "created_at": at,
            })
    conn.execute(Interaction.__table__.insert(), interactions)
    conn.execute(InteractionOrganization.__table__.insert(), links_org)
    conn.execute(InteractionContact.__table__.insert(), links_contact)
    if links_tag:
        conn.execute(InteractionTag.__table__.insert(), links_tag)
    if tasks:
        conn.execute(Task.__table__.insert(), tasks)
    writer = BulkWriter(conn)
    for table in (Tag, Organization, Contact, Interaction, Task):
        writer.sync_id_sequence(table.__table__)
    return {"organizations": len(orgs), "contacts": len(contacts), "interactions": len(interactions), "tasks": len(tasks)}
