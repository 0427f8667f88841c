"""The app's real HTTP server (uvicorn serving server.py's st.App) on a free loopback port, for one database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import pytest

from tests.campaign_fixtures import free_port
from tests.conftest import ROOT


@contextmanager
def serving(db, *, port: int):
    """The app's server on `port` for `db` (the environment's configuration), until the block ends."""
    env = {**os.environ, "DATABASE_URL": db.url}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server:app", "--app-dir", str(ROOT), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
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
            raise RuntimeError("the app server did not start: " + server.stdout.read().decode(errors="replace")[-2000:])
        time.sleep(0.2)
    try:
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture
def web(db):
    """Base URL of a running server whose routes and pages use `db` (and the test's signing key)."""
    with serving(db, port=free_port()) as base:
        yield base
