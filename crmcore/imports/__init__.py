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

__all__ = ["FIELDS", "KIND_LABELS", "PRESETS", "Inspection", "Summary", "first_rows", "inspect", "mapping", "recent_runs", "run_import"]


@dataclass(frozen=True)
class Inspection:
    format: reading.FileFormat
    first_rows: pd.DataFrame  # the columns asked for only: an unmapped column's cells are never shown
    suggested_preset: str | None


def inspect(path: Path, *, name: str | None = None, columns: list[str] | None = None, rows: int = 5) -> Inspection:
    """What a person needs to map a file: its format, header and the first rows of `columns` (none unless
    asked: a page shows the columns its mapping maps, never passwords or notes it does not); the size limit checked first."""
    path = Path(path)
    reading.check_size(path, name=name)
    fmt = reading.sniff(path, name=name)
    return Inspection(format=fmt, first_rows=first_rows(path, fmt, columns=columns or [], rows=rows), suggested_preset=mapping.suggest_preset(fmt.header))


def first_rows(path: Path, fmt: reading.FileFormat, *, columns: list[str], rows: int = 5) -> pd.DataFrame:
    """The first rows of the named columns only (in the order given; a name not in the header is left out)."""
    index = {name: i for i, name in reversed(list(enumerate(fmt.header)))}
    keep = [c for c in dict.fromkeys(columns) if c in index]
    picked = [[(record[index[c]] if index[c] < len(record) else "") for c in keep] for record in reading.preview(Path(path), fmt, limit=rows)] if keep else []
    return pd.DataFrame(picked, columns=pd.Index([c or f"(column {index[c] + 1})" for c in keep], dtype=object).astype(str))


def choose_mapping(db, *, actor, kind: str, path: Path, name: str | None = None) -> dict:
    """The mapping the CLI uses: a JSON file, a preset or saved mapping by name, else the preset the header suggests.
    A preset keeps the columns the file has (the summary names the optional ones it lacked)."""
    import json

    from crmcore.admin.permissions import Perm, require

    require(actor, Perm.IMPORT_DATA)
    if name and name.endswith(".json") and Path(name).exists():
        try:
            return json.loads(Path(name).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name} is not a JSON mapping: {exc}") from None
    header = reading.sniff(Path(path)).header
    if name:
        with db.read() as session:
            chosen = mapping.find(session, actor=actor, name=name, kind=kind)
        return mapping.fit_preset(kind, chosen, header) if name in mapping.PRESETS else chosen
    suggested = mapping.suggest_preset(header)
    if suggested is None or mapping.PRESETS[suggested][0] != kind:
        raise ValueError(f"{Path(path).name}: no preset fits its columns; give --mapping (a preset, a saved mapping or a JSON file).")
    return mapping.fit_preset(kind, mapping.preset(suggested)[1], header)
