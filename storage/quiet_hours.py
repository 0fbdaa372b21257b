"""Quiet hours: notices to residents that are not urgent wait for the morning (Asia/Shanghai).

`GRIDBOT_QUIET_HOURS` is "22:00-07:00" by default; "off" turns them off. Staff alarms (urge,
escalation, overdue verification) and notices about urgent matters are never held back.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, time, timedelta

from .timeutil import LOCAL_TZ

DEFAULT = "22:00-07:00"


def window() -> tuple[time, time] | None:
    text = os.environ.get("GRIDBOT_QUIET_HOURS", DEFAULT).strip().lower()
    if text in ("", "off", "no", "none"):
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
    if not match:
        raise ValueError(f"GRIDBOT_QUIET_HOURS looks like 22:00-07:00, not {text!r}")
    return time(int(match[1]), int(match[2])), time(int(match[3]), int(match[4]))


def deliver_after(moment: datetime) -> datetime:
    """`moment`, or the end of the quiet hours it falls in."""
    quiet = window()
    if quiet is None:
        return moment
    starts, ends = quiet
    local = moment.astimezone(LOCAL_TZ)
    now = local.time()
    inside = (starts <= now or now < ends) if starts > ends else (starts <= now < ends)
    if not inside:
        return moment
    day = local.date() if now < ends else local.date() + timedelta(days=1)
    return datetime.combine(day, ends, LOCAL_TZ).astimezone(moment.tzinfo)
