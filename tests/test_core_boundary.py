"""crmcore is the product and is usable without a UI: it must never import streamlit."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "crmcore"


def test_crmcore_never_imports_streamlit():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno}" for name in names if name.split(".")[0] == "streamlit"]
    assert offenders == []
