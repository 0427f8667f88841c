"""Uploaded import files: owner-only whatever the umask, deleted when done, stale ones removed."""

import os
import stat
import time
from datetime import timedelta

import pytest

from crmcore.imports import uploads


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o077])
def test_uploads_are_owner_only_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = uploads.save(b"cardnumber,password\n1,secret\n", name="borrowers.csv", root=tmp_path / "uploads")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.suffix == ".csv" and path.read_bytes().startswith(b"cardnumber")


def test_a_folder_made_world_readable_is_made_private_again(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    uploads.save(b"x", name="a.csv", root=folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_the_same_upload_is_one_file_and_discard_deletes_only_uploads(tmp_path):
    root = tmp_path / "uploads"
    a = uploads.save(b"a,b\n1,2\n", name="x.csv", root=root)
    assert uploads.save(b"a,b\n1,2\n", name="x.csv", root=root) == a
    outside = tmp_path / "other.csv"
    outside.write_text("keep")
    assert not uploads.discard(outside, root=root) and outside.exists()
    assert uploads.discard(a, root=root) and not a.exists()
    assert not uploads.discard(a, root=root)
    assert [p.name for p in root.iterdir()] == []  # no half-written file left


def test_stale_uploads_are_removed_and_fresh_ones_kept(tmp_path):
    root = tmp_path / "uploads"
    old, fresh = uploads.save(b"old", name="o.csv", root=root), uploads.save(b"new", name="n.csv", root=root)
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    assert uploads.remove_stale(root=root) == 1
    assert not old.exists() and fresh.exists()
    assert uploads.remove_stale(root=root, older_than=timedelta(0), now=time.time() + 1) == 1
    assert not fresh.exists()


@pytest.mark.parametrize("name,data,shown", [
    ("photo.csv", None, "photo.csv is not a text file (it looks like a PNG image): export the data as CSV and upload that."),
    ("borrowers.csv", b"", "borrowers.csv is empty: the first line must name the columns."),
])
def test_the_imports_page_names_a_refused_upload_as_the_librarian_uploaded_it(app, name, data, shown):
    from pathlib import Path

    if data is None:
        data = (Path(__file__).parent / "fixtures" / "photo.png").read_bytes()
    at = app(role="admin", page="pages/imports.py").run()
    at.file_uploader[0].set_value((name, data, "text/csv")).run()
    assert not at.exception and [e.value for e in at.error] == [shown]
    assert not at.dataframe or "cardnumber" not in at.dataframe[0].value.columns
