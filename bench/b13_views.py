"""B13's pages one at a time: one staff session on one replica, nothing else on the server.

`python -m bench.b13_views --size N [--db postgres] [--views 15] [--profile FILE]` starts one app replica on the
cached library, signs the bench manager in, warms the pages up, then times `--views` runs of each page B13
drives (the dashboard, segments, the patron directory, a patron search), each in a fresh tab as B13 opens them,
and prints the median and the fastest per page. The machine's load changes a loaded run's p95 a great deal;
one session's view times change far less, so they show what a change to a page did. With `--profile`, py-spy
records the replica while the views run (`py_spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager

from bench.b13_replicas import SEARCH, VIEWS, _check, _password, _search_terms
from bench.common import BENCH_USER, Context, say
from bench.stream_client import Tab


async def _views(base: str, password: str, terms, views: int, on_warm) -> dict[str, list[float]]:
    async with Tab(base) as tab:
        cookies = await tab.sign_in(BENCH_USER, password)
    # One idle tab stays open, as other staff's would under load: when its last session closes, Streamlit empties its
    # cache of compiled scripts, and every tab opened after that would compile app.py and the page again.
    async with Tab(base, cookies=cookies) as idle:
        await idle.run()
        return await _timed(base, cookies, terms, views, on_warm)


async def _timed(base: str, cookies, terms, views: int, on_warm) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {what: [] for what in [*VIEWS.values(), SEARCH]}
    pages = {}
    for n in range(views + 2):  # two untimed rounds first: imports, caches
        if n == 2:
            on_warm()
        async with Tab(base, cookies=cookies, pages=pages) as tab:
            form = None
            for page, what in VIEWS.items():
                run = await tab.run(page)
                _check(run, page)
                form = run
                if n >= 2:
                    times[what].append(run.seconds)
            pages = tab.pages
            by, query = terms[n % len(terms)]
            run = await tab.run("patrons", widgets=[
                (form.widget("selectbox", "Search by"), "string_value", by),
                (form.widget("text_input", "Search for"), "string_value", query),
                (form.widget("button", "Search"), "trigger_value", True),
            ])
            _check(run, "patrons")
            if n >= 2:
                times[SEARCH].append(run.seconds)
    return times


def _server_pid(port: int) -> int:
    """The uvicorn child of this process serving `port`."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if b"uvicorn" in b" ".join(args) and str(port).encode() in args:
                return int(entry)
    raise LookupError(f"no server on port {port}")


@contextmanager
def py_spy(port: int, path: str):
    """py-spy recording the replica serving `port` (only the thread holding the interpreter) until the block ends;
    a flame graph in `path`, speedscope for a .json suffix, collapsed stacks for .txt."""
    fmt = {".json": ["--format", "speedscope"], ".txt": ["--format", "raw"]}.get(os.path.splitext(path)[1], [])
    spy = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-p", str(_server_pid(port)),
                            "-o", path, "--rate", "200", "--nonblocking", "--gil", *fmt], stdout=subprocess.DEVNULL)
    time.sleep(1)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=120)


def main() -> None:
    from tests.campaign_fixtures import free_port
    from tests.web_server import serving

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--views", type=int, default=15)
    parser.add_argument("--profile", help="py-spy's output file")
    args = parser.parse_args()
    ctx = Context(size=args.size, backend=args.db)
    db = ctx.db()
    password, terms = _password(db), _search_terms(db)
    port = free_port()
    with ExitStack() as stack:
        base = stack.enter_context(serving(db, port=port, env={"CRM_SECRET_KEY": secrets.token_urlsafe(32)}))
        on_warm = (lambda: stack.enter_context(py_spy(port, args.profile))) if args.profile else (lambda: None)
        load = os.getloadavg()[0]
        times = asyncio.run(_views(base, password, terms, args.views, on_warm))
    say(f"one session, {args.views} views of each page, {args.size:,} patrons on {args.db}; load average {load:.1f} → {os.getloadavg()[0]:.1f}")
    for what, values in times.items():
        say(f"  {what:18} median {statistics.median(values):.3f} s, fastest {min(values):.3f} s")


if __name__ == "__main__":
    main()
