"""Imports: patrons, activity, event attendance, zones and organizations from the files libraries export.

`inspect` a file (size, encoding, delimiter, header, first rows), choose or build a mapping
(`mapping.PRESETS`, saved mappings), then `run_import` it, dry or for real. See runner.py for the
guarantees (all-or-nothing batches, idempotent re-runs, the run record and the error file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crmcore.imports import mapping, reading
from crmcore.imports.mapping import FIELDS, KIND_LABELS, PRESETS
from crmcore.imports.runner import Summary, recent_runs, run_import

__all__ = ["FIELDS", "KIND_LABELS", "PRESETS", "Inspection", "Summary", "inspect", "mapping", "recent_runs", "run_import"]


@dataclass(frozen=True)
class Inspection:
    format: reading.FileFormat
    first_rows: pd.DataFrame
    suggested_preset: str | None


def inspect(path: Path, *, name: str | None = None, rows: int = 5) -> Inspection:
    """What a person needs to map a file: its format, header and first rows (the size limit checked first)."""
    path = Path(path)
    reading.check_size(path, name=name)
    fmt = reading.sniff(path, name=name)
    width = len(fmt.header)
    first = [(r + [""] * width)[:width] for r in reading.preview(path, fmt, limit=rows)]
    labels = [h or f"(column {i + 1})" for i, h in enumerate(fmt.header)]
    frame = pd.DataFrame(first, columns=pd.Index(labels).astype(str))
    return Inspection(format=fmt, first_rows=frame, suggested_preset=mapping.suggest_preset(fmt.header))


def choose_mapping(db, *, actor, kind: str, path: Path, name: str | None = None) -> dict:
    """The mapping the CLI uses: a JSON file, a preset or saved mapping by name, else the preset the header suggests."""
    import json

    from crmcore.admin.permissions import Perm, require

    require(actor, Perm.IMPORT_DATA)
    if name and name.endswith(".json") and Path(name).exists():
        try:
            return json.loads(Path(name).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name} is not a JSON mapping: {exc}") from None
    if name:
        with db.read() as session:
            return mapping.find(session, actor=actor, name=name, kind=kind)
    suggested = mapping.suggest_preset(reading.sniff(Path(path)).header)
    if suggested is None or mapping.PRESETS[suggested][0] != kind:
        raise ValueError(f"{Path(path).name}: no preset fits its columns; give --mapping (a preset, a saved mapping or a JSON file).")
    return mapping.preset(suggested)[1]
