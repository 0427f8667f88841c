"""Quiet hours: no text goes out between `quiet_hours_start` and `quiet_hours_end` (whole hours, default 21 to 8)
in the library's time zone; texts due then wait until the window opens."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from crmcore.admin import settings


def is_quiet(moment: datetime, *, zone: ZoneInfo, start: int, end: int) -> bool:
    """Whether `moment` (aware) falls in the quiet hours; start == end means none."""
    hour = moment.astimezone(zone).hour
    if start == end:
        return False
    return start <= hour or hour < end if start > end else start <= hour < end


def opens_at(moment: datetime, *, zone: ZoneInfo, start: int, end: int) -> datetime:
    """When texting may go on: `moment` itself outside the quiet hours, else the next `end` o'clock (UTC)."""
    if not is_quiet(moment, zone=zone, start=start, end=end):
        return moment
    local = moment.astimezone(zone)
    day = local.date() if local.hour < end else local.date() + timedelta(days=1)
    return datetime.combine(day, time(end), tzinfo=zone).astimezone(moment.tzinfo)


def window(session: Session) -> dict:
    """The library's quiet hours: zone, start, end (for is_quiet / opens_at)."""
    return {"zone": settings.library_zone(session), "start": int(settings.get(session, "quiet_hours_start")), "end": int(settings.get(session, "quiet_hours_end"))}
