"""The app's real HTTP server (uvicorn serving server.py's st.App) on a free loopback port, for one database."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import httpx
import pytest

from tests.campaign_fixtures import free_port
from tests.conftest import ROOT


@contextmanager
def serving(db, *, port: int, env: dict[str, str] | None = None):
    """The app's server on `port` for `db` (the environment's configuration, `env` over it), until the block ends."""
    env = {**os.environ, **(env or {}), "DATABASE_URL": db.url}
    # Its output goes to a file: a pipe nobody reads fills up and stops a server that logs under load.
    output = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server:app", "--app-dir", str(ROOT), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            server.wait()
            output.seek(0)
            raise RuntimeError("the app server did not start: " + output.read().decode(errors="replace")[-2000:])
        time.sleep(0.2)
    try:
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        output.close()


@pytest.fixture
def web(db):
    """Base URL of a running server whose routes and pages use `db` (and the test's signing key)."""
    with serving(db, port=free_port()) as base:
        yield base
