"""B3: the five standard segments counted by crmcore vs hand-written SQL with the same meaning.

The hand SQL is what a DBA would write against the same tables (the monthly rollups, the patron's last
activity date, current consent), with the product's documented semantics: activity windows count whole
months, from the first of the month the window starts in; erased patrons never match.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text

from bench.common import Context, Row, backend, check_agree, load_average, median_time
from crmcore.admin.permissions import Actor, Role

WHAT = "segment count"
LIMIT = {"sqlite": 0.1, "postgres": 0.3}  # seconds each at 1,000,000 patrons, per backend
RATIO = 1.5
TARGET = "≤ 0.1 s each on SQLite, ≤ 0.3 s on PostgreSQL, ≤ 1.5× hand SQL"
MANAGER = Actor(id=None, username="bench", role=Role.MANAGER)

HAND_SQL = {
    "lapsed_zone_email": """
        SELECT count(*) FROM patron p
        WHERE p.erased_at IS NULL AND p.last_activity_on <= :lapsed_since
          AND p.zone_id IN (SELECT id FROM zone WHERE code = :zone)
          AND p.id IN (SELECT patron_id FROM current_consent
                       WHERE channel = 'email' AND topic = 'newsletter' AND granted)""",
    "new_90_days": """
        SELECT count(*) FROM patron p
        WHERE p.erased_at IS NULL AND p.registered_on BETWEEN :new_since AND :today""",
    "age_band_branch": """
        SELECT count(*) FROM patron p
        WHERE p.erased_at IS NULL
          AND p.branch_id IN (SELECT id FROM branch WHERE code = :branch)
          AND (p.age_band = :band
               OR (coalesce(p.age_band, '') = '' AND p.birth_year BETWEEN :born_from AND :born_to))""",
    "digital_loan_12_months": """
        SELECT count(*) FROM patron p
        WHERE p.erased_at IS NULL
          AND p.id IN (SELECT patron_id FROM activity_monthly
                       WHERE kind = 'digital_loan' AND month >= :year_ago_month AND count > 0)""",
    "event_never_borrowed": """
        SELECT count(*) FROM patron p
        WHERE p.erased_at IS NULL
          AND p.id IN (SELECT patron_id FROM activity_monthly WHERE kind = 'event_attendance' AND count > 0)
          AND NOT EXISTS (SELECT 1 FROM activity_monthly m
                          WHERE m.patron_id = p.id AND m.kind = 'checkout' AND m.count > 0)""",
}


def _value(segment: str, field: str) -> str:
    """The one value a standard segment compares `field` with (its zone, branch, age band)."""
    from crmcore.campaigns import segments

    (leaf,) = [leaf for leaf in segments.STANDARD_SEGMENTS[segment]["all"] if leaf["field"] == field]
    (value,) = leaf["value"]
    return value


def hand_params(today: date) -> dict:
    low, high = (int(n) for n in _value("age_band_branch", "age_band").split("-"))
    return {
        "today": today,
        "zone": _value("lapsed_zone_email", "zone"),
        "branch": _value("age_band_branch", "branch"),
        "band": _value("age_band_branch", "age_band"),
        "born_from": today.year - high,
        "born_to": today.year - low,
        "lapsed_since": today - timedelta(days=180),
        "new_since": today - timedelta(days=90),
        "year_ago_month": (today - timedelta(days=365)).replace(day=1),
    }


def product_counts(db, today: date) -> dict[str, float]:
    """Each standard segment's count by crmcore (one call, for the memory and growth benchmarks)."""
    from crmcore.campaigns import segments

    with db.read() as session:
        return {name: segments.count(session, actor=MANAGER, rules=rules, today=today) for name, rules in segments.STANDARD_SEGMENTS.items()}


def time_segments(db, reps: int, today: date | None = None) -> dict[str, tuple[float, int, float, int]]:
    """name -> (product seconds, product count, hand-SQL seconds, hand-SQL count)."""
    from crmcore.campaigns import segments

    today = today or date.today()
    params = hand_params(today)
    out = {}
    with db.read() as session:
        for name, rules in segments.STANDARD_SEGMENTS.items():
            product_s, product_n = median_time(lambda: segments.count(session, actor=MANAGER, rules=rules, today=today), reps=reps)
            hand = text(HAND_SQL[name])
            hand_s, hand_n = median_time(lambda: session.execute(hand, params).scalar_one(), reps=reps)
            out[name] = (product_s, product_n, hand_s, hand_n)
    return out


def run(ctx: Context) -> list[Row]:
    timings = time_segments(ctx.db(), ctx.reps)
    check_agree("B3 segment counts", {n: t[1] for n, t in timings.items()}, {n: t[3] for n, t in timings.items()})
    limit, load = LIMIT[backend()], load_average()
    rows = []
    for name, (product_s, count, hand_s, _) in timings.items():
        row = Row("B3", f"{WHAT}: {name} ({count:,})", product_s, hand_s, TARGET, extra={"count": count, "load_average": load})
        row.met = product_s <= limit and row.ratio <= RATIO
        if not row.met:
            over = [f"{product_s / limit:.1f}× the {limit} s" if product_s > limit else "", f"{row.ratio / RATIO:.1f}× the {RATIO}× ratio" if row.ratio > RATIO else ""]
            row.note = "over " + " and ".join(o for o in over if o)
        if count == 0:  # agreeing on zero proves little: say so
            row.note = "; ".join(n for n in (row.note, "matches no patron of the demo library") if n)
        rows.append(row)
    return rows
