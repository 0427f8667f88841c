"""B7: how B2 and B3 grow with ten times the patrons (size/10 vs size, product side, same run)."""

from __future__ import annotations

from bench import b2_dashboard, b3_segments
from bench.common import Context, Row, median_time

WHAT = "growth for 10× patrons"
TARGET = "B2 grows ≤ 2×"


def measure(ctx: Context, size: int) -> tuple[float, float]:
    """(B2 seconds, slowest B3 segment seconds) on the data set of `size` patrons."""
    db = ctx.db(size)
    end = b2_dashboard.end_month(db)
    dashboard_s, _ = median_time(lambda: b2_dashboard.product(db, end), reps=ctx.reps)
    slowest = max(t[0] for t in b3_segments.time_segments(db, ctx.reps).values())
    return dashboard_s, slowest


def run(ctx: Context) -> list[Row]:
    small, large = ctx.size // 10, ctx.size
    (b2_small, b3_small), (b2_large, b3_large) = measure(ctx, small), measure(ctx, large)
    label = f"{small:,} → {large:,}"
    b2 = Row("B7", f"{WHAT}: B2 dashboard, {label}", b2_large, b2_small, TARGET, met=b2_large / b2_small <= 2.0)
    b3 = Row("B7", f"{WHAT}: B3 slowest segment, {label}", b3_large, b3_small, "(reported)")
    b2.note, b3.note = f"grows {b2_large / b2_small:.1f}×", f"grows {b3_large / b3_small:.1f}×"
    return [b2, b3]
