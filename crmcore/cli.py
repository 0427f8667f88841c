"""The command line: parses arguments and calls crmcore; no behaviour of its own.

Every command is listed in the README (tests/test_docs.py checks it).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import subprocess
import sys
import time

from sqlmodel import func, select

from crmcore import files, worker
from crmcore.admin import auth, config
from crmcore.admin.permissions import PermissionDenied, Role
from crmcore.db import DatabaseError, describe, migrate, open_database
from crmcore.models import Patron


def _read_password(prompt: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise ValueError("The two passwords differ.")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_migrate(args) -> None:
    migrate()
    print(f"Database {describe(config.database_url())} is at the latest schema.")


def cmd_init(args) -> None:
    """Migrate, seed the demo library into an empty database, and create the first admin."""
    from crmcore.demo.library import generate

    db = open_database()
    with db.read() as session:
        empty = session.exec(select(func.count()).select_from(Patron)).one() == 0
    if empty and not args.no_demo:
        print(f"Seeding the demo library ({args.patrons:,} patrons); this takes a moment…")
        generate(db, patrons=args.patrons, seed=args.seed)
    with db.write() as session:
        password = auth.ensure_admin(session)
    if password:
        print("\n  First start: sign in as  admin  with the password  " + password)
        print("  (shown once; change it under Administration → Staff.)\n")


def cmd_demo(args) -> None:
    from crmcore.demo.library import generate

    db = open_database()
    counts = generate(db, patrons=args.patrons, seed=args.seed)
    print(", ".join(f"{v:,} {k}" for k, v in counts.items()))


def cmd_user(args) -> None:
    db = open_database()
    with db.write() as session:
        if args.action == "add":
            password = _read_password(f"Password for {args.username}: ")
            auth.create_user(session, actor=auth.CLI_ACTOR, username=args.username, password=password, role=args.role)
        elif args.action == "passwd":
            password = _read_password(f"New password for {args.username}: ")
            auth.set_password(session, actor=auth.CLI_ACTOR, username=args.username, password=password)
        elif args.action == "disable":
            auth.set_active(session, actor=auth.CLI_ACTOR, username=args.username, active=False)
        elif args.action == "enable":
            auth.set_active(session, actor=auth.CLI_ACTOR, username=args.username, active=True)
    print(f"{args.action}: {args.username}: done")


def cmd_worker(args) -> None:
    jobs = worker.chosen_jobs(args.job) if args.job else None  # checked before the database is opened
    db = open_database()
    if args.once:
        worker.run(db, jobs=jobs, once=True)
    else:
        worker.run_forever(db, jobs=jobs)


def cmd_inbound(args) -> None:
    from crmcore.campaigns import inbound

    host, port = config.get("CRM_INBOUND_HOST", "127.0.0.1"), args.port or config.get("CRM_INBOUND_PORT")
    if not port:
        raise SystemExit("Set CRM_INBOUND_PORT (or pass --port) to say where the inbound mail listener listens.")
    print(f"Liaison inbound mail listener on {host}:{port}", flush=True)
    try:
        inbound.listen(open_database(), host=host, port=int(port))
    except KeyboardInterrupt:
        pass


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def cmd_serve(args) -> None:
    """Start the app (Streamlit's st.App with the public routes, under uvicorn), the worker, and the inbound
    mail listener when CRM_INBOUND_PORT is set; Ctrl-C (or SIGTERM) stops them all."""
    open_database().dispose()  # migrate once, here, before the children open it side by side
    env = dict(os.environ)
    app = [sys.executable, "-m", "uvicorn", "server:app", "--app-dir", str(config.ROOT), "--host", args.address, "--port", str(args.port),
           "--no-server-header", "--log-level", "warning"]
    commands = [[sys.executable, "-m", "crmcore", "worker"], app]
    if config.get("CRM_INBOUND_PORT"):
        commands.append([sys.executable, "-m", "crmcore", "inbound"])
    # SIGTERM (a service manager, `kill`) must stop the children too, not only this process.
    signal.signal(signal.SIGTERM, _interrupt)
    children = [subprocess.Popen(command, env=env, cwd=config.ROOT) for command in commands]
    print(f"Liaison: http://{args.address}:{args.port}  (Ctrl-C stops the app and the worker)", flush=True)
    try:
        # Whichever stops first (the app, the worker, or Ctrl-C) stops the other.
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


def cmd_backup(args) -> None:
    from crmcore.admin import backup

    path = backup.create_backup(open_database(), actor=auth.CLI_ACTOR, path=args.path)
    print(f"Backed up {describe(config.database_url())} to {path}")


def cmd_restore(args) -> None:
    from crmcore.admin import restore

    if not args.yes:
        raise ValueError("Restoring replaces the whole database (after backing it up); add --yes to go ahead.")
    result = restore.restore(open_database(), actor=auth.CLI_ACTOR, path=args.path)
    print(f"Restored {args.path} (schema {result['file_revision']} → {result['now_revision']}); the previous database was saved as {result['previous_saved_as']}.")


def cmd_retention(args) -> None:
    from crmcore.privacy import retention

    db = open_database()
    if args.now:
        result = retention.run(db, actor=auth.CLI_ACTOR)
        print(f"Deleted {result['events_deleted']:,} raw activity events before {result['cutoff']} (rollups kept).")
    else:
        result = retention.preview(db)
        print(f"{result['events_before_cutoff']:,} raw activity events lie before {result['cutoff']}; run with --now to delete them.")


def cmd_insights(args) -> None:
    """Recompute personas and lapse risk now (the worker does it weekly)."""
    from crmcore.insights import refresh

    print(f"Recomputed: {refresh.run(open_database(), actor=auth.CLI_ACTOR)}.")


def cmd_import(args) -> None:
    """Import (or dry-run) one file; the error file lists every rejected row's line, field and reason."""
    from pathlib import Path

    from crmcore import imports

    db = open_database()
    path = Path(args.file)
    chosen = imports.choose_mapping(db, actor=auth.CLI_ACTOR, kind=args.kind, path=path, name=args.mapping)
    summary = imports.run_import(
        db, actor=auth.CLI_ACTOR, kind=args.kind, path=path, mapping=chosen, dry_run=args.dry_run, geojson=Path(args.geojson) if args.geojson else None
    )
    print(summary.describe())
    if summary.rejected:
        errors = Path(args.errors or path.with_name(path.stem + ".errors.csv"))
        errors.write_bytes(summary.errors_csv())
        print(f"{len(summary.rejected):,} rejected rows listed in {errors}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crmcore", description="Liaison, the library patron relationship manager.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(func=cmd_migrate)

    p = sub.add_parser("init", help="migrate, seed the demo library if empty, create the first admin")
    p.add_argument("--no-demo", action="store_true", help="do not seed the demo library")
    p.add_argument("--patrons", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", help="generate the demo library (deterministic for a seed)")
    p.add_argument("--patrons", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("user", help="manage staff accounts: add, passwd, disable, enable")
    p.add_argument("action", choices=["add", "passwd", "disable", "enable"])
    p.add_argument("username")
    p.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    p.set_defaults(func=cmd_user)

    p = sub.add_parser("worker", help="run the background worker (scheduled jobs, sending)")
    p.add_argument("--once", action="store_true", help="run each job once and exit")
    p.add_argument("--job", action="append", metavar="NAME",
                   help='run only this job (repeatable), e.g. --job "send campaigns" for a worker that only sends')
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("inbound", help="run the inbound mail listener: unsubscribes by mail, bounces, complaints")
    p.add_argument("--port", type=int, help="port to listen on (default CRM_INBOUND_PORT)")
    p.set_defaults(func=cmd_inbound)
    p = sub.add_parser("serve", help="start the app, its public routes, the worker (and the inbound listener) together")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("backup", help="back up the database while the app runs (SQLite online backup, pg_dump)")
    p.add_argument("path", nargs="?", help="backup file (default: a new file in CRM_BACKUP_DIR)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup after checking its integrity and schema version")
    p.add_argument("path")
    p.add_argument("--yes", action="store_true", help="really replace the current database")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("retention", help="delete raw activity older than the retention window (rollups kept)")
    p.add_argument("--now", action="store_true", help="delete now (without it: say what would be deleted)")
    p.set_defaults(func=cmd_retention)
    p = sub.add_parser("insights", help="recompute personas and lapse risk now (the worker does it weekly)")
    p.add_argument("action", choices=["refresh"])
    p.set_defaults(func=cmd_insights)
    p = sub.add_parser("import", help="import patrons, activity, circulation counts, attendance, zones or organizations from a CSV file")
    p.add_argument("kind", choices=["patrons", "activity", "circulation", "attendance", "zones", "organizations", "catalogue"])
    p.add_argument("file")
    p.add_argument("--mapping", help="a preset (e.g. 'Koha borrowers'), a saved mapping's name, or a JSON file")
    p.add_argument("--dry-run", action="store_true", help="check every row and report, write nothing")
    p.add_argument("--geojson", help="zones: a GeoJSON FeatureCollection with the zones' shapes")
    p.add_argument("--errors", help="where to write the error file (default: FILE.errors.csv next to FILE)")
    p.set_defaults(func=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        files.private_dir(config.DATA_DIR)  # the database, backups and outbox live here: owner-only
        args.func(args)
    except (DatabaseError, ValueError, PermissionDenied, LookupError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
