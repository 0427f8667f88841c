"""A writer process for the concurrency and crash tests: `python -m tests.concurrency_writer MODE URL TAG SECONDS`.

It writes through crmcore's own paths until SECONDS have passed and reports on stdout, flushed, one line
per event: `ok <key>` once a write is committed, `error <message>` for any exception (it keeps going).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from crmcore import cli
from crmcore.admin.auth import CLI_ACTOR
from crmcore.db import Database
from crmcore.outreach import interactions
from crmcore.outreach.kinds import KINDS
from crmcore.privacy import audit

MAPPING = {"columns": {"ils_id": "cardnumber", "first_name": "firstname", "last_name": "surname", "email": "email"}, "date_order": "iso"}
PER_IMPORT = 10


def report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def write_interaction(db: Database, tag: str, i: int) -> str:
    with db.write() as session:
        made = interactions.log_interaction(session, actor=CLI_ACTOR, kind=next(iter(KINDS)), new_organizations=[f"Org {tag}-{i}"], notes=f"{tag}-{i}")
    return str(made.id)


def write_import(db: Database, tag: str, i: int, folder: Path) -> str:
    path = folder / f"{tag}-{i}.csv"
    rows = [f"{tag}-{i}-{j},First{j},Last{j},{tag.lower()}.{i}.{j}@example.org" for j in range(PER_IMPORT)]
    path.write_text("cardnumber,firstname,surname,email\n" + "\n".join(rows) + "\n")
    if cli.main(["import", "patrons", str(path), "--mapping", str(folder / "mapping.json")]) != 0:
        raise RuntimeError("import failed (see stderr)")
    return f"{tag}-{i}"


def write_direct(db: Database, tag: str, i: int) -> str:
    with db.write() as session:
        entry = audit.record(session, actor=None, action="test.write", entity="test", entity_id=f"{tag}-{i}")
        session.flush()
    return str(entry.id)


def main(mode: str, url: str, tag: str, seconds: float) -> None:
    db = Database(url)
    folder = Path(tempfile.mkdtemp(prefix=f"writer-{tag}-"))
    (folder / "mapping.json").write_text(json.dumps(MAPPING))
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        try:
            if mode == "interaction":
                key = write_interaction(db, tag, i)
            elif mode == "import":
                key = write_import(db, tag, i, folder)
            else:
                key = write_direct(db, tag, i)
            report(f"ok {key}")
        except Exception as exc:  # noqa: BLE001 - every exception is reported to the test
            report(f"error {type(exc).__name__}: {exc}")
        i += 1
    report("done")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
