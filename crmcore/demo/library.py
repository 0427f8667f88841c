"""The demo library: a deterministic, realistic library to try Liaison on (`python -m crmcore demo`).

Six branches, twelve zones with census figures and shapes (hexagons on a grid, so the dashboard's map shows),
N patrons with two years of activity (summer reading peak, December dip, a third of cardholders lapsed; raw
events only inside the retention window, the older months in the monthly rollups), consent records, the community side
(organizations, contacts, interactions, tasks) and a catalogue feed of new materials (`catalogue`). Everything comes from
one seed: the same seed gives the same library (relative to today). Patrons are made in numpy chunks and appended in bulk, so a
million patrons with twenty million events take minutes; the rollups are rebuilt at the end.
"""

from __future__ import annotations

import json
import logging
import math
import time
from datetime import date, timedelta

import numpy as np
from sqlalchemy import delete, func, select
from sqlmodel import Session

from crmcore.bulk import BulkWriter, indexes_deferred
from crmcore.db import Database, describe
from crmcore.demo import catalogue, community
from crmcore.library import activity, consent
from crmcore.models import ActivityEvent, ActivityMonthly, Branch, ConsentRecord, CurrentConsent, Patron, Zone
from crmcore.privacy import retention

log = logging.getLogger("liaison.demo")
CHUNK = 25_000
WINDOW_DAYS = 730
BULK_TABLES = [t.__table__ for t in (Patron, ActivityEvent, ActivityMonthly, ConsentRecord, CurrentConsent)]  # two years of raw activity, ending today

BRANCHES = [("CEN", "Central Library"), ("RIV", "Riverside Branch"), ("NGT", "Northgate Branch"),
            ("EWD", "Eastwood Branch"), ("SSD", "Southside Branch"), ("HCR", "Hillcrest Branch")]
# code, name, share of patrons, market penetration, median income, nearest branch (index into BRANCHES)
ZONES = [
    ("48101", "Downtown", 0.12, 0.42, 61_000, 0), ("48102", "Old Town", 0.09, 0.38, 54_000, 0),
    ("48103", "Riverside", 0.10, 0.33, 72_000, 1), ("48104", "Mill District", 0.06, 0.21, 41_000, 1),
    ("48105", "Northgate", 0.11, 0.30, 83_000, 2), ("48106", "Lakeview", 0.07, 0.27, 95_000, 2),
    ("48107", "Eastwood", 0.09, 0.24, 47_000, 3), ("48108", "Harbor Flats", 0.06, 0.16, 36_000, 3),
    ("48109", "Southside", 0.10, 0.22, 44_000, 4), ("48110", "Fairground", 0.05, 0.19, 39_000, 4),
    ("48111", "Hillcrest", 0.09, 0.35, 88_000, 5), ("48112", "Orchard Hills", 0.06, 0.31, 79_000, 5),
]
FIRST_NAMES = np.array(
    "Olivia Liam Emma Noah Ava Elijah Sophia Mateo Isabella Lucas Mia Amir Aaliyah Wei Mei Hiroshi Yuki Priya Arjun "
    "Fatima Omar Leila Yusuf Chloe Ethan Grace Daniel Zoe Samuel Nia Malik Imani Jamal Rosa Diego Camila Luis Sofia "
    "Jose Ana Carlos Elena Ivan Olga Dmitri Anya Kofi Ama Chidi Ngozi Thandiwe Sipho Linh Minh Huong Bao Sun Jin "
    "Hana Min Seo Kai Leilani Maya Ari Noa Eli Ruth Miriam Abe Hannah Sarah David Joseph Mary Patricia James Robert "
    "Linda Barbara William Susan Richard Karen Thomas Nancy Margaret Dorothy Frank Helen Walter Gloria Harold Alice "
    "Ingrid Lars Freya Sven Aoife Cian Siobhan Declan Ewa Piotr Zofia Tomasz Ravi Anjali Deepa Sanjay Tariq Noor".split()
)
LAST_NAMES = np.array(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
    "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera "
    "Campbell Mitchell Carter Roberts Kim Park Chen Wang Li Zhang Liu Patel Shah Singh Kumar Khan Ali Hassan "
    "Ahmed Haddad Okafor Mensah Diallo Abebe Kowalski Nowak Novak Ivanova Petrov Murphy Kelly OBrien Sullivan "
    "Yamamoto Tanaka Sato Suzuki Tran Pham Le Vu Cohen Levi Friedman Schmidt Muller Weber Rossi Russo Silva "
    "Santos Costa Johansson Larsen Nielsen Hansen Jensen Moreau Dubois Laurent Begay Yazzie Tsosie".split()
)
INTERESTS = np.array(["mysteries", "local history", "gardening", "coding", "crafts", "science fiction", "cooking",
                      "genealogy", "picture books", "graphic novels", "language learning", "job seeking", "tax help",
                      "book clubs", "STEM", "music", "travel", "health", "parenting", "film"])
GENRES = np.array(["fiction", "mystery", "romance", "biography", "history", "science", "children", "young adult",
                   "cookbooks", "travel", "self-help", "graphic novels", "audiobooks", "music", "film"])
# Age groups: (share, lowest age, highest age).
AGE_GROUPS = [(0.17, 0, 12), (0.08, 13, 17), (0.11, 18, 24), (0.46, 25, 64), (0.18, 65, 92)]
AGE_BANDS = [(12, "0-12"), (17, "13-17"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"),
             (64, "55-64"), (74, "65-74"), (200, "75+")]
TYPES = np.array(["child", "teen", "adult", "senior", "student", "homebound", "nonresident"])
# Share of each activity kind (activity.KINDS order) per patron type.
KIND_MIX = np.array([
    # checkout renewal digital pc event visit survey
    [0.50, 0.12, 0.06, 0.04, 0.17, 0.105, 0.005],  # child
    [0.38, 0.10, 0.14, 0.14, 0.10, 0.135, 0.005],  # teen
    [0.40, 0.16, 0.20, 0.07, 0.05, 0.115, 0.005],  # adult
    [0.42, 0.20, 0.12, 0.08, 0.07, 0.105, 0.005],  # senior
    [0.30, 0.10, 0.22, 0.20, 0.04, 0.135, 0.005],  # student
    [0.55, 0.25, 0.15, 0.00, 0.00, 0.045, 0.005],  # homebound
    [0.45, 0.15, 0.10, 0.10, 0.05, 0.145, 0.005],  # nonresident
])
# Opt-in rate per channel and topic (consent.TOPICS order: events, new materials, newsletter, fundraising, services).
OPT_IN = {
    "email": [0.42, 0.33, 0.55, 0.10, 0.62],
    "sms": [0.09, 0.04, 0.03, 0.01, 0.27],
    "phone": [0.02, 0.01, 0.01, 0.01, 0.08],
    "mail": [0.05, 0.02, 0.08, 0.06, 0.03],
}
WITHDRAW_RATE = 0.07
# Activity by month of year (summer reading peak, December dip) and by weekday (Sunday hours are short).
MONTH_FACTOR = np.array([1.0, 1.0, 1.05, 1.0, 0.95, 1.3, 1.45, 1.2, 1.0, 1.05, 0.95, 0.68])
WEEKDAY_FACTOR = np.array([1.0, 1.05, 1.0, 1.0, 0.95, 1.1, 0.5])


# Preferred languages of demo patrons by a two-percent slot (crmcore.languages): seven slots Spanish, two French.
DEMO_LANGUAGES = {**dict.fromkeys(range(0, 7), "es"), 7: "fr", 8: "fr", **dict.fromkeys(range(9, 50), "en")}

def generate(db: Database, *, patrons: int = 20_000, seed: int = 1, today: date | None = None) -> dict[str, int]:
    """Fill an empty database with the demo library; returns the number of rows made per kind."""
    if patrons < 1:
        raise ValueError("--patrons must be at least 1.")
    today = today or date.today()
    with db.read() as session:
        existing = session.execute(select(func.count()).select_from(Patron)).scalar_one()
        existing += session.execute(select(func.count()).select_from(Branch)).scalar_one()
    if existing:
        raise ValueError(f"The demo library goes into an empty database; {describe(db.url)} already holds patrons or branches.")
    began = time.monotonic()
    counts: dict[str, int] = {"branches": len(BRANCHES), "zones": len(ZONES), "patrons": 0, "activity events": 0, "consent records": 0}
    with _bulk_connection(db) as conn:
        with conn.begin():
            _structure(conn, patrons)
        with indexes_deferred(conn, BULK_TABLES):
            for number, start in enumerate(range(0, patrons, CHUNK)):
                rng = np.random.default_rng([seed, number])
                with conn.begin():
                    made = _patron_chunk(BulkWriter(conn), rng, first_id=start + 1, size=min(CHUNK, patrons - start), today=today)
                for key, value in made.items():
                    counts[key] += value
                log.info("demo: %s of %s patrons, %s events (%.0f s)", f"{start + made['patrons']:,}", f"{patrons:,}", f"{counts['activity events']:,}", time.monotonic() - began)
            with conn.begin():
                BulkWriter(conn).sync_id_sequence(Patron.__table__)
                counts |= community.generate(conn, rng=np.random.default_rng([seed, 1 << 30]), today=today, zones=len(ZONES))
                counts |= catalogue.generate(conn, today=today, branch_ids={code: i + 1 for i, (code, _name) in enumerate(BRANCHES)})
            log.info("demo: community records done (%.0f s); rebuilding the monthly rollups", time.monotonic() - began)
            with conn.begin():
                activity.rebuild_rollups(Session(conn))
                counts["activity events"] -= _as_retention_left_it(conn, today)
            log.info("demo: rollups done (%.0f s); building indexes", time.monotonic() - began)
    db.analyze()
    log.info("demo: done (%.0f s)", time.monotonic() - began)
    return counts


def _as_retention_left_it(conn, today: date) -> int:
    """Keep raw events only inside the retention window, as a library running Liaison has them: the older
    months live on in the rollups and the patrons' dates, and the worker's first retention run deletes nothing."""
    kept_from = retention.cutoff(Session(conn), today=today)
    return conn.execute(delete(ActivityEvent.__table__).where(ActivityEvent.__table__.c.occurred_on < kept_from)).rowcount or 0


def _zone_shape(index: int) -> dict:
    """A generated shape for the demo's zone `index`: a hexagon on a 4 × 3 grid around a made-up town
    (GeoJSON Polygon, its ring clockwise as the map's d3 projection draws a small area)."""
    column, row = index % 4, index // 4
    radius_km, lat0, lon0 = 2.6, 42.28, -83.74
    km_lat, km_lon = 1 / 110.57, 1 / (111.32 * math.cos(math.radians(lat0)))
    x = 1.5 * radius_km * column
    y = -math.sqrt(3) * radius_km * (row + 0.5 * (column % 2))
    ring = []
    for step in range(6, -1, -1):  # 360° down to 0°: clockwise, closed
        angle = math.radians(60 * step)
        ring.append([round(lon0 + (x + radius_km * math.cos(angle)) * km_lon, 5), round(lat0 + (y + radius_km * math.sin(angle)) * km_lat, 5)])
    return {"type": "Polygon", "coordinates": [ring]}


class _bulk_connection:
    """A write connection tuned for a bulk load on SQLite (no fsync per chunk), restored afterwards."""

    def __init__(self, db: Database):
        self.conn = db.engine.execution_options(write=True).connect()

    def __enter__(self):
        if self.conn.dialect.name == "sqlite":
            # Outside any transaction (SQLite refuses to change the safety level inside one).
            raw = self.conn.connection.driver_connection
            raw.execute("PRAGMA synchronous = OFF")
            raw.execute("PRAGMA cache_size = -262144")  # 256 MB for the index B-trees
        return self.conn

    def __exit__(self, *exc):
        try:
            if self.conn.dialect.name == "sqlite":
                self.conn.rollback()
                raw = self.conn.connection.driver_connection
                raw.execute("PRAGMA synchronous = FULL")
                raw.execute("PRAGMA cache_size = -2000")
        finally:
            self.conn.close()


def _structure(conn, patrons: int) -> None:
    """Branches and zones; zone populations scale with N so that market penetration is plausible."""
    conn.execute(Branch.__table__.insert(), [{"id": i + 1, "code": c, "name": n} for i, (c, n) in enumerate(BRANCHES)])
    rows = []
    for i, (code, name, share, penetration, income, _branch) in enumerate(ZONES):
        population = max(50, round(patrons * share / penetration))
        census = {"under_18_share": round(0.16 + 0.02 * (i % 5), 2), "over_65_share": round(0.12 + 0.015 * (i % 6), 3),
                  "non_english_at_home_share": round(0.08 + 0.03 * (i % 4), 2), "source": "demo census"}
        rows.append({"id": i + 1, "code": code, "name": name, "population": population, "households": round(population / 2.4),
                     "median_income": income, "census": census, "geojson": json.dumps(_zone_shape(i))})
    conn.execute(Zone.__table__.insert(), rows)
    writer = BulkWriter(conn)
    writer.sync_id_sequence(Branch.__table__)
    writer.sync_id_sequence(Zone.__table__)


def _days(base: date, offsets: np.ndarray) -> list[str]:
    """ISO dates for day offsets from `base`."""
    return np.datetime_as_string(np.datetime64(base, "D") + offsets.astype("timedelta64[D]"), unit="D").tolist()


def _stamps(base: date, offsets: np.ndarray, seconds: np.ndarray) -> list[str]:
    """UTC timestamps as stored: days from `base` plus seconds into the day."""
    if not len(offsets):
        return []
    moments = np.datetime64(base, "us") + offsets.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")
    return np.char.replace(np.datetime_as_string(moments, unit="us"), "T", " ").tolist()


def _patron_chunk(writer: BulkWriter, rng: np.random.Generator, *, first_id: int, size: int, today: date) -> dict[str, int]:
    ids = np.arange(first_id, first_id + size)
    # Who they are.
    group = rng.choice(len(AGE_GROUPS), size=size, p=[g[0] for g in AGE_GROUPS])
    low, high = np.array([g[1] for g in AGE_GROUPS])[group], np.array([g[2] for g in AGE_GROUPS])[group]
    age = low + (rng.random(size) * (high - low + 1)).astype(int)
    band_edges = np.array([b[0] for b in AGE_BANDS])
    band = np.array([b[1] for b in AGE_BANDS])[np.searchsorted(band_edges, age)]
    ptype = np.select([age <= 12, age <= 17, age >= 65], [0, 1, 3], default=2)
    ptype[(age >= 18) & (age <= 24) & (rng.random(size) < 0.35)] = 4
    ptype[(age >= 75) & (rng.random(size) < 0.06)] = 5
    nonresident = (age >= 18) & (rng.random(size) < 0.02)
    ptype[nonresident] = 6
    shares = np.array([z[2] for z in ZONES])
    zone = rng.choice(len(ZONES), size=size, p=shares / shares.sum())
    nearest = np.array([z[5] for z in ZONES])[zone]
    branch = np.where(rng.random(size) < 0.78, nearest, rng.integers(0, len(BRANCHES), size))
    first = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), size)]
    last = LAST_NAMES[rng.integers(0, len(LAST_NAMES), size)]
    has_email = rng.random(size) < np.where(age <= 12, 0.45, 0.86)
    has_phone = rng.random(size) < 0.68
    domain = np.where(rng.random(size) < 0.6, "example.org", "example.net")
    phone_area = np.array(["312", "773", "872", "630"])[rng.integers(0, 4, size)]
    phone_tail = rng.integers(0, 100, size)
    # When they joined (more recent years busier) and how they use the library.
    reg_ago = np.minimum((3652 * rng.random(size) ** 1.25).astype(int), age * 365 + 120)
    reg_ago = np.maximum(reg_ago, 1)
    ever_active = rng.random(size) > 0.05
    state = rng.random(size)
    old_enough = reg_ago > 400
    lapsed = ever_active & old_enough & (state < 0.36)
    at_risk = ever_active & (reg_ago > 200) & ~lapsed & (state > 0.88)
    first_ago = np.maximum(reg_ago - rng.geometric(0.15, size), 0)  # first use a few days after joining
    end_ago = np.zeros(size, dtype=int)  # last use, in days before today
    end_ago[at_risk] = rng.integers(183, 365, at_risk.sum())
    lapsed_span = np.maximum(first_ago[lapsed] - 366, 1)
    end_ago[lapsed] = 366 + (rng.random(lapsed.sum()) * lapsed_span).astype(int)
    end_ago = np.minimum(end_ago, first_ago)
    rate = rng.lognormal(np.log(1.15), 0.85, size) * np.where(ptype == 1, 0.8, 1.0)  # events per month
    window_start = today - timedelta(days=WINDOW_DAYS)
    start_day = np.maximum(WINDOW_DAYS - first_ago, 0)  # day index in the window (0 = window start)
    end_day = WINDOW_DAYS - end_ago
    span = np.where(ever_active & (end_day >= start_day), end_day - start_day, -1)
    n_events = np.where(span >= 0, rng.poisson(rate * (span + 1) / 30.44), 0)
    # The last use of a lapsed or at-risk patron is an event, when it falls in the window.
    closing = ever_active & (lapsed | at_risk) & (span >= 0)
    n_events = n_events + closing
    history = rng.random(size) < 0.22
    registered = _days(today, -reg_ago)
    expires_ago = np.where(lapsed, end_ago - rng.integers(0, 1095, size), -rng.integers(30, 1095, size))
    # Activity before the two-year window is known only from these dates (its raw events are long gone).
    before_window = ever_active & (first_ago > WINDOW_DAYS)
    stored_first = np.where(before_window, first_ago, -1)
    stored_last = np.where(ever_active & (end_ago > WINDOW_DAYS), end_ago,
                           np.where(before_window, np.minimum(WINDOW_DAYS + rng.integers(1, 60, size), first_ago), -1))
    interest_count = rng.choice(4, size=size, p=[0.35, 0.3, 0.22, 0.13])
    interest_pick = np.argsort(rng.random((size, len(INTERESTS))), axis=1)[:, :3]
    created = _stamps(today, -reg_ago, rng.integers(9 * 3600, 20 * 3600, size))
    dates_first, dates_last = _days(today, -stored_first), _days(today, -stored_last)
    columns = {
        "id": ids.tolist(),
        "ils_id": [f"21234{i:09d}" for i in ids.tolist()],
        "first_name": first.tolist(),
        "last_name": last.tolist(),
        "email": [f"{f.lower()}.{l.lower()}{i % 997}@{d}" if e else None
                  for f, l, i, d, e in zip(first.tolist(), last.tolist(), ids.tolist(), domain.tolist(), has_email.tolist())],
        "phone": [f"+1{a}5550{100 + t}" if p else None for a, t, p in zip(phone_area.tolist(), phone_tail.tolist(), has_phone.tolist())],
        "birth_year": (today.year - age).tolist(),
        "age_band": band.tolist(),
        "zone_id": [None if n else int(z) + 1 for z, n in zip(zone.tolist(), nonresident.tolist())],
        "branch_id": (branch + 1).tolist(),
        "patron_type": TYPES[ptype].tolist(),
        "registered_on": registered,
        "expires_on": _days(today, -expires_ago),
        "interests": [", ".join(INTERESTS[row[:k]]) or None for row, k in zip(interest_pick, interest_count.tolist())],
        "history_opt_in": history.tolist(),
        # Languages spread by id (not drawn from rng: the rest of the demo stays as it was): 14 % Spanish, 4 % French.
        "language": [DEMO_LANGUAGES.get(i * 37 % 100 // 2) for i in ids.tolist()],
        "first_activity_on": [d if s >= 0 else None for d, s in zip(dates_first, stored_first.tolist())],
        "last_activity_on": [d if s >= 0 else None for d, s in zip(dates_last, stored_last.tolist())],
        "created_at": created,
        "updated_at": created,
    }
    writer.append(Patron.__table__, list(columns), list(columns.values()))
    events = _events(writer, rng, ids=ids, n_events=n_events, start_day=start_day, end_day=end_day, closing=closing,
                     ptype=ptype, branch=branch, history=history, window_start=window_start)
    records = _consent(writer, rng, ids=ids, has_email=has_email, has_phone=has_phone, child=age <= 12, reg_ago=reg_ago, today=today)
    return {"patrons": size, "activity events": events, "consent records": records}


def _events(writer, rng, *, ids, n_events, start_day, end_day, closing, ptype, branch, history, window_start) -> int:
    """Raw activity events in the window, distributed by season and weekday."""
    total = int(n_events.sum())
    if not total:
        return 0
    days = np.arange(WINDOW_DAYS + 1)
    calendar = np.datetime64(window_start, "D") + days.astype("timedelta64[D]")
    months = calendar.astype("datetime64[M]").astype(int) % 12
    weekdays = (calendar.astype("datetime64[D]").astype(int) + 3) % 7  # 1970-01-01 was a Thursday
    weight = MONTH_FACTOR[months] * WEEKDAY_FACTOR[weekdays] * (1 + 0.1 * days / WINDOW_DAYS)
    cdf = np.cumsum(weight)
    owner = np.repeat(np.arange(len(ids)), n_events)
    lo = np.where(start_day > 0, cdf[np.maximum(start_day - 1, 0)], 0.0)[owner]
    hi = cdf[np.clip(end_day, 0, WINDOW_DAYS)][owner]
    day = np.searchsorted(cdf, lo + rng.random(total) * (hi - lo), side="left")
    # The closing event of a lapsed or at-risk patron falls on their last day of use.
    last_slot = np.cumsum(n_events) - 1
    closers = last_slot[closing]
    day[closers] = end_day[closing]
    day = np.minimum(day, WINDOW_DAYS)
    mix = np.cumsum(KIND_MIX, axis=1)[ptype[owner]]
    kind = (rng.random(total)[:, None] > mix[:, :-1]).sum(axis=1)
    ev_branch = np.where(rng.random(total) < 0.82, branch[owner], rng.integers(0, len(BRANCHES), total)) + 1
    digital = kind == activity.KINDS.index("digital_loan")
    count = np.where(kind == 0, rng.geometric(0.45, total), np.where(kind == 1, 1 + rng.poisson(0.4, total), 1))
    with_category = history[owner] & ((kind == 0) | digital)
    category = GENRES[rng.integers(0, len(GENRES), total)]
    order = np.lexsort((day, owner))
    kinds = np.array(activity.KINDS)[kind[order]]
    writer.append(
        ActivityEvent.__table__,
        ["patron_id", "occurred_on", "kind", "branch_id", "count", "category"],
        [
            ids[owner[order]].tolist(),
            _days(window_start, day[order]),
            kinds.tolist(),
            [None if d else int(b) for b, d in zip(ev_branch[order].tolist(), digital[order].tolist())],
            count[order].tolist(),
            [c if w else None for c, w in zip(category[order].tolist(), with_category[order].tolist())],
        ],
    )
    return total


def _consent(writer, rng, *, ids, has_email, has_phone, child, reg_ago, today) -> int:
    """Consent given on the registration form, some of it withdrawn later; history and current agree."""
    size = len(ids)
    granted_at = np.array(_stamps(today, -reg_ago, rng.integers(9 * 3600, 20 * 3600, size)), dtype=object)
    wording = np.where(reg_ago > 900, "2021-06", consent.WORDING_VERSION).astype(object)
    form = np.where(reg_ago > 2500, "ILS import", "registration form").astype(object)
    records: dict[str, list] = {k: [] for k in ("patron_id", "channel", "topic", "granted", "recorded_at", "source", "wording_version")}
    current: dict[str, list] = {k: [] for k in ("patron_id", "channel", "topic", "granted", "updated_at")}
    for channel, rates in OPT_IN.items():
        available = has_email if channel == "email" else has_phone if channel in ("sms", "phone") else np.ones(size, bool)
        for topic, rate in zip(consent.TOPICS, rates):
            grant = np.flatnonzero(available & (rng.random(size) < rate * np.where(child, 0.5, 1.0)))
            withdrawn = (rng.random(len(grant)) < WITHDRAW_RATE) & (reg_ago[grant] > 30)
            gone = grant[withdrawn]
            # Withdrawn on a day between registration and yesterday.
            later = (rng.random(len(gone)) * (reg_ago[gone] - 1)).astype(int) + 1
            gone_at = np.array(_stamps(today, -later, rng.integers(0, 86_400, len(gone))), dtype=object)
            n, m = len(grant), len(gone)
            records["patron_id"] += ids[grant].tolist() + ids[gone].tolist()
            records["channel"] += [channel] * (n + m)
            records["topic"] += [topic] * (n + m)
            records["granted"] += [True] * n + [False] * m
            records["recorded_at"] += granted_at[grant].tolist() + gone_at.tolist()
            records["source"] += form[grant].tolist() + ["preferences page"] * m
            records["wording_version"] += wording[grant].tolist() + [consent.WORDING_VERSION] * m
            updated = granted_at[grant].copy()
            updated[withdrawn] = gone_at
            current["patron_id"] += ids[grant].tolist()
            current["channel"] += [channel] * n
            current["topic"] += [topic] * n
            current["granted"] += (~withdrawn).tolist()
            current["updated_at"] += updated.tolist()
    writer.append(ConsentRecord.__table__, list(records), list(records.values()))
    writer.append(CurrentConsent.__table__, list(current), list(current.values()))
    return len(records["patron_id"])
