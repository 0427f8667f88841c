"""The README documents every command, every configuration variable and the real permission matrix."""

import argparse
import re

import pytest

from crmcore import cli
from crmcore.admin import config
from crmcore.admin.permissions import ROLE_PERMISSIONS, Perm, Role
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subcommands() -> list[str]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_command_is_in_the_readme(command):
    assert re.search(rf"^\| `{re.escape(command)}[ `]", README, re.MULTILINE), f"README's command table lacks `{command}`"


@pytest.mark.parametrize("variable", list(config.VARIABLES))
def test_every_configuration_variable_is_in_the_readme(variable):
    assert re.search(rf"^\| `{variable}` \|", README, re.MULTILINE), f"README's configuration table lacks {variable}"


def test_the_readme_role_table_is_the_permission_matrix():
    header = next(line for line in README.splitlines() if line.startswith("| permission |"))
    roles = [cell.strip() for cell in header.strip("|").split("|")][2:]
    assert roles == [r.value for r in Role]
    table = {}
    for line in README.splitlines():
        match = re.match(r"^\| `(\w+)` \|[^|]*\|(.*)\|$", line)
        if match and match.group(1) in {p.value for p in Perm}:
            table[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    assert set(table) == {p.value for p in Perm}
    for perm, marks in table.items():
        assert {role for role, mark in zip(roles, marks) if mark == "✓"} == {r.value for r in Role if Perm(perm) in ROLE_PERMISSIONS[r]}, perm
        assert set(marks) <= {"✓", "—"}


def test_the_two_commands_come_first():
    first_block = README.split("```")[1]
    assert "make run" in first_block and "make test" in first_block
    assert README.index("make run") < README.index("## ", README.index("# Liaison") + 2)


def test_the_developer_map_names_every_module_of_crmcore():
    """Each `crmcore/…` row of docs/DEVELOPING.md's map names exactly the modules in that folder (and in its
    sub-folders that have no row of their own)."""
    rows = dict(re.findall(r"^\| `(crmcore/[\w/]*)` \| (.*) \|$", (ROOT / "docs" / "DEVELOPING.md").read_text(encoding="utf-8"), re.MULTILINE))
    core = ROOT / "crmcore"
    packages = {p.parent for p in core.rglob("__init__.py") if "migrations" not in p.parts}
    assert set(rows) == {f"{p.relative_to(ROOT)}/" for p in packages if p == core or p.parent == core}
    for folder, cell in rows.items():
        here = ROOT / folder
        expected = {p.stem for p in here.glob("*.py") if p.stem not in ("__init__", "__main__")}
        for sub in sorted(d for d in here.iterdir() if d.is_dir() and f"{d.relative_to(ROOT)}/" not in rows and not d.name.startswith("__")):
            expected.add(f"{sub.name}/")
            if (sub / "__init__.py").exists():  # a package's modules; migrations/ is named as a folder
                expected |= {p.stem for p in sub.glob("*.py") if p.stem != "__init__"}
        assert set(re.findall(r"`([a-z_]+/?)`", cell)) == expected, folder
