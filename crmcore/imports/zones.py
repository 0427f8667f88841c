"""Zone imports: census figures per zone (upsert on the code), and optionally the zones' shapes.

The shapes come from a GeoJSON FeatureCollection: each feature whose properties name a zone code
(the mapping's `geojson_property`, else property `code` or a common census key such as GEOID or
ZCTA5CE20) is stored on that zone as a Feature with `id` = the code, ready for a choropleth.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from crmcore.imports.batch import Batch, BatchResult
from crmcore.models import Zone

ZONE = Zone.__table__
FIGURES = ("name", "population", "households", "median_income")
CODE_KEYS = ("code", "zone", "id", "GEOID", "GEOID20", "GEOID10", "ZCTA5CE20", "ZCTA5CE10", "zip", "ZIP", "name")


def _features(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not a GeoJSON file: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise ValueError(f"{path.name} is not a GeoJSON FeatureCollection.")
    return [f for f in data["features"] if isinstance(f, dict)]


def features_by_code(path: Path, *, code_property: str | None = None) -> dict[str, dict[str, Any]]:
    """Zone code → Feature (geometry only) from a GeoJSON FeatureCollection, the code read from `code_property`
    (else the usual code properties, then the feature's id); ValueError if it is not a FeatureCollection."""
    keys = (code_property,) if code_property else CODE_KEYS
    out = {}
    for feature in _features(path):
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        code = next((str(props[k]).strip() for k in keys if props.get(k) not in (None, "")), None)
        if code is None and not code_property and feature.get("id") is not None:
            code = str(feature["id"])
        if code and isinstance(feature.get("geometry"), dict):
            out[code] = {"type": "Feature", "id": code, "properties": {"code": code}, "geometry": feature["geometry"]}
    return out


def geojson_properties(path: Path, *, examples: int = 3) -> dict[str, list[str]]:
    """The properties the file's features have → a few of their distinct values, to choose the one holding the zone code."""
    out: dict[str, list[str]] = {}
    for feature in _features(path):
        props = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        for key, value in props.items():
            seen = out.setdefault(str(key), [])
            text = "" if value is None or isinstance(value, (dict, list)) else str(value).strip()[:40]
            if text and len(seen) < examples and text not in seen:
                seen.append(text)
    return out


class ZoneImport:
    kind = "zones"

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.figures = [f for f in FIGURES if f in mapping["columns"]]
        self.census_columns = mapping.get("census_columns") or []
        self.property = mapping.get("geojson_property")
        self.geojson: Path | None = None
        self.geojson_name = ""  # the shapes file's name as uploaded
        self.codes: set[str] = set()

    def prepare(self, batch: Batch) -> list[tuple[int, dict[str, Any]]]:
        return batch.rows()

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        result = BatchResult()
        conn = session.connection()
        codes = [v["code"] for _l, v in rows]
        existing = {r.code: r for r in conn.execute(select(ZONE).where(ZONE.c.code.in_(codes)))}
        for _line, v in rows:
            self.codes.add(v["code"])
            wanted = {f: v.get(f) for f in self.figures}
            if v.get("census") is not None:
                wanted["census"] = v["census"]
            if not wanted.get("name"):
                wanted.pop("name", None)
            before = existing.get(v["code"])
            if before is None:
                result.new += 1
                if not dry_run:
                    conn.execute(ZONE.insert().values(code=v["code"], **{"name": v["code"], **wanted}))
                    existing[v["code"]] = conn.execute(select(ZONE).where(ZONE.c.code == v["code"])).one()
            elif all(getattr(before, k) == value for k, value in wanted.items()):
                result.unchanged += 1
            else:
                result.updated += 1
                if not dry_run:
                    conn.execute(update(ZONE).where(ZONE.c.code == v["code"]).values(**wanted))
                    existing[v["code"]] = conn.execute(select(ZONE).where(ZONE.c.code == v["code"])).one()
        return result

    def finish(self, db, *, dry_run: bool) -> list[str]:
        if self.geojson is None:
            return []
        features = features_by_code(self.geojson, code_property=self.property)
        matched = sorted(set(features) & self.codes)
        if not dry_run:
            with db.write() as session:
                for code in matched:
                    session.execute(update(ZONE).where(ZONE.c.code == code).values(geojson=json.dumps(features[code], separators=(",", ":"))))
        unmatched = len(self.codes) - len(matched)
        verb = "would get" if dry_run else "got"
        note = f"{len(matched)} zones {verb} a shape from {self.geojson_name or self.geojson.name}" + (f"; {unmatched} zones have none in it." if unmatched else ".")
        if self.codes and not matched:
            tried = [self.property] if self.property else [*CODE_KEYS, "the feature id"]
            available = geojson_properties(self.geojson)
            listed = "; ".join(f"{k} (e.g. {', '.join(v) or 'no values'})" for k, v in list(available.items())[:20]) or "none"
            note += (f" No feature's code matched a zone: the properties tried were {', '.join(tried)}. The file's features have the properties"
                     f" {listed}: choose the one holding the zone code as the GeoJSON property of the mapping.")
        return [note]
