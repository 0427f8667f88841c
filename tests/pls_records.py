"""A Public Libraries Survey administrative-entity file built from the published record layout (a subset of its
columns, in its order), with the survey's missing codes (-1 missing, -3 not applicable, -4 closed, -9 suppressed)."""

from __future__ import annotations

import csv
from pathlib import Path

HEADER = ["STABR", "FSCSKEY", "LIBID", "LIBNAME", "ADDRESS", "CITY", "ZIP", "CNTY", "C_RELATN", "C_LEGBAS", "C_ADMIN", "GEOCODE", "LSABOUND",
          "POPU_LSA", "POPU_UND", "CENTLIB", "BRANLIB", "BKMOB", "TOTSTAFF", "TOTINCM", "TOTOPEXP", "VISITS", "REGBOR", "TOTCIR", "KIDCIRCL",
          "ELMATCIR", "PHYSCIR", "TOTPRO", "TOTATTEN", "LOCALE_ADD", "LOCALE_MOD"]

# FSCS key, name, state, population, branches, expenditure, visits, registered, circulation, e-circulation, programs, attendance, locale
LIBRARIES = [
    ("IL0001", "Prairie Public Library", "IL", 52_000, 2, 2_600_000, 310_000, 30_000, 520_000, 60_000, 900, 21_000, "21"),
    ("IL0002", "Riverbend District Library", "IL", 48_000, 1, 2_100_000, 250_000, 26_000, 400_000, 41_000, 700, 15_000, "21"),
    ("IL0003", "Oak Grove Library", "IL", 61_000, 3, 3_300_000, 380_000, 35_000, 640_000, -1, 1_100, 26_000, "21"),
    ("IL0004", "Cornfield Township Library", "IL", 4_200, 0, 150_000, 21_000, 2_500, 30_000, 4_000, -9, -9, "42"),
    ("IL0005", "Lakeshore City Library", "IL", 240_000, 8, 14_000_000, 1_200_000, 120_000, 2_100_000, 300_000, 4_000, 90_000, "12"),
    ("WI0001", "Badger Falls Library", "WI", 50_000, 2, 2_400_000, 280_000, 29_000, 470_000, 52_000, 850, 19_000, "21"),
    ("WI0002", "North Woods Library", "WI", 3_900, -3, 140_000, 19_000, 2_000, 28_000, 3_000, 120, 2_100, "43"),
]


def survey_file(path: Path, *, growth: float = 1.0) -> Path:
    """Write the survey file (figures × `growth`, for another year) and return its path."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for key, name, state, pop, branches, spend, visits, reg, circ, ecirc, progs, att, locale in LIBRARIES:
            grow = lambda v: v if v < 0 else int(v * growth)  # noqa: E731 - codes stay codes
            cells = {
                "STABR": state, "FSCSKEY": key, "LIBID": key + "-001", "LIBNAME": name, "ADDRESS": "1 Main St", "CITY": "Town", "ZIP": "60000",
                "CNTY": "COUNTY", "C_RELATN": "NO", "C_LEGBAS": "CI", "C_ADMIN": "SO", "GEOCODE": "CI1", "LSABOUND": "N", "POPU_LSA": pop,
                "POPU_UND": pop, "CENTLIB": 1, "BRANLIB": branches, "BKMOB": 0, "TOTSTAFF": "12.50", "TOTINCM": spend, "TOTOPEXP": grow(spend),
                "VISITS": grow(visits), "REGBOR": grow(reg), "TOTCIR": grow(circ), "KIDCIRCL": -1, "ELMATCIR": grow(ecirc), "PHYSCIR": grow(circ),
                "TOTPRO": grow(progs), "TOTATTEN": grow(att), "LOCALE_ADD": locale, "LOCALE_MOD": locale,
            }
            out.writerow([cells[c] for c in HEADER])
    return path
