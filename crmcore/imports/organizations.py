"""Organization and contact imports, through crmcore.outreach (its checks, duplicate finding, audit).

A row names an organization and, optionally, one contact there. An organization or contact already
in Liaison (same email, else same name) is left as it is; only new ones are created.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from crmcore.admin.permissions import Actor
from crmcore.imports.batch import Batch, BatchResult, Rejected
from crmcore.outreach import contacts, organizations

ORG_FIELDS = ("sector", "email", "phone", "website", "address", "is_partner")
CONTACT_FIELDS = {"first_name": "contact_first_name", "email": "contact_email", "phone": "contact_phone", "job_title": "contact_job_title"}


def _rejection(line: int, exc: ValueError, prefix: str = "") -> Rejected:
    field, _, reason = str(exc).partition(": ")
    if not reason or " " in field:
        field, reason = "row", str(exc)
    return Rejected(line, prefix + field, reason)


class OrganizationImport:
    kind = "organizations"

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, actor: Actor):
        self.actor = actor
        self.orgs_created = self.contacts_created = 0

    def prepare(self, batch: Batch) -> list[tuple[int, dict[str, Any]]]:
        return batch.each_row(self._tags)

    def _tags(self, values: dict[str, Any]) -> dict[str, Any]:
        tags = values.get("tags")
        values["tags"] = [t.strip() for t in tags.split(",") if t.strip()] if tags else []
        return values

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        result = BatchResult()
        for line, v in rows:
            savepoint = session.begin_nested()
            try:
                created = self._row(session, v)
            except ValueError as exc:
                savepoint.rollback()
                result.rejected.append(_rejection(line, exc))
                continue
            if dry_run:
                savepoint.rollback()
            else:
                savepoint.commit()
            if created:
                result.new += 1
            else:
                result.unchanged += 1
        return result

    def _row(self, session: Session, v: dict[str, Any]) -> bool:
        created = False
        org = organizations.find_organization(session, actor=self.actor, name=v["name"], email=v.get("email"))
        if org is None:
            org = organizations.create_organization(session, actor=self.actor, name=v["name"], tags=v["tags"], **{f: v.get(f) for f in ORG_FIELDS if v.get(f) is not None})
            self.orgs_created += 1
            created = True
        last_name = v.get("contact_last_name")
        if last_name:
            contact = contacts.find_contact(session, actor=self.actor, email=v.get("contact_email"), first_name=v.get("contact_first_name"), last_name=last_name, organization_id=org.id)
            if contact is None:
                fields = {f: v.get(col) for f, col in CONTACT_FIELDS.items() if v.get(col) is not None}
                contacts.create_contact(session, actor=self.actor, last_name=last_name, organization_id=org.id, **fields)
                self.contacts_created += 1
                created = True
        elif any(v.get(col) for col in CONTACT_FIELDS.values()):
            raise ValueError("contact_last_name: is missing (a contact needs a last name)")
        return created

    def finish(self, db, *, dry_run: bool) -> list[str]:
        verb = "would be created" if dry_run else "created"
        return [f"{self.orgs_created:,} organizations and {self.contacts_created:,} contacts {verb}; ones already in Liaison were left as they are."]
