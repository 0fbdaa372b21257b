"""On the 1st of each month (from GRIDBOT_BULLETIN_HOUR, Lhasa time, until the 10th), every grid chief and
centre staff member gets last month's bulletin of their unit in the chat, in their language: the key
figures, the chart, and links to the page and the PDF. Once per person and month across instances
(storage.bulletin_deliveries)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import datetime, time

from conversations.figures import KEY_FIGURES, digits, labelled, shown, value_of
from conversations.i18n import N_, translate
from conversations.protocol import Reply
from storage import bulletin_deliveries, indicators
from storage.db import writing
from storage.indicators import Period, Scope
from storage.models import Node, Person
from storage.timeutil import LOCAL_TZ, utcnow

log = logging.getLogger("gridbot.bulletins")

LAST_DAY = 10  # a bulletin not sent by the 10th is no longer news
FIGURES = ("reported", "closed", "due", "closed_on_time", "overdue_open", "on_time_closed_rate", "closed_rate",
           "satisfaction_rate", "composite_score")
WORDS = {
    "heading": N_("📊 Monthly bulletin of {unit}, {month}:"),
    "rank": N_("Rank among {count} units: {rank}"),
    "links": N_("The whole bulletin: {page}\nPDF: {pdf}"),
}


def due_month(now: datetime, hour: int) -> Period | None:
    """The month whose bulletin is due now: last month, from the 1st at `hour` until the 10th."""
    local = now.astimezone(LOCAL_TZ)
    if local.day > LAST_DAY or (local.day == 1 and local.time() < time(hour)):
        return None
    return Period.of(now).previous()


class BulletinCourier:
    def __init__(self, sessionmaker, send_to_person, *, public_url: str = "", hour: int | None = None,
                 worker: str | None = None):
        """`send_to_person(person_id, replies) -> bool` is the dispatcher's (its platforms and pacing)."""
        self.sessionmaker = sessionmaker
        self.send_to_person = send_to_person
        self.public_url = public_url.rstrip("/")
        self.hour = int(os.environ.get("GRIDBOT_BULLETIN_HOUR", "8")) if hour is None else hour
        self.worker = worker or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.sent = 0

    async def run_once(self, now: datetime | None = None) -> int:
        """Plan this month's deliveries and send what this instance leases; returns how many were sent."""
        now = now or utcnow()
        period = due_month(now, self.hour)
        if period is None:
            return 0
        async with self.sessionmaker.begin() as session:
            await writing(session)
            await bulletin_deliveries.plan(session, period.label, now)
        sent = 0
        figures_of: dict[int, tuple] = {}
        while True:
            async with self.sessionmaker.begin() as session:
                await writing(session)
                leased = [(d.id, d.person_id, d.node_id)
                          for d in await bulletin_deliveries.lease(session, period.label, self.worker, now=now)]
            if not leased:
                return sent
            for delivery_id, person_id, node_id in leased:
                try:
                    if node_id not in figures_of:
                        figures_of[node_id] = await self._figures(node_id, period, now)
                    replies = await self._replies(person_id, period, *figures_of[node_id])
                    ok = await self.send_to_person(person_id, replies)
                    error = None if ok else "not handed to a platform"
                except Exception as exc:  # noqa: BLE001 - recorded and retried
                    log.exception("bulletin for person %s failed", person_id)
                    ok, error = False, type(exc).__name__
                async with self.sessionmaker.begin() as session:
                    await writing(session)
                    if ok:
                        await bulletin_deliveries.mark_sent(session, delivery_id, self.worker, now)
                        sent += 1
                        self.sent += 1
                    else:
                        await bulletin_deliveries.mark_failed(session, delivery_id, self.worker, error, now)

    async def _figures(self, node_id: int, period: Period, now: datetime):
        async with self.sessionmaker() as session:
            node = await session.get(Node, node_id)
            report = await indicators.compute(session, Scope(node), period, now=now)
            rank = None
            if node.parent_id is not None:
                parent = await session.get(Node, node.parent_id)
                siblings = await indicators.compute(session, Scope(parent), period, now=now)
                ranked = [n.code for n, _, score in siblings.ranked() if score is not None]
                if node.code in ranked:
                    rank = (ranked.index(node.code) + 1, len(ranked))
        return node, report, rank

    async def _replies(self, person_id: int, period: Period, node: Node, report, rank) -> list[Reply]:
        async with self.sessionmaker() as session:
            language = (await session.get(Person, person_id)).language
        month = translate(language, "{year}-{month}", year=digits(language, str(period.first.year)),
                          month=digits(language, f"{period.first.month:02d}"))
        lines = [translate(language, WORDS["heading"], unit=node.name(language), month=month)]
        for key, msgid, kind in KEY_FIGURES:
            if key in FIGURES:
                value = shown(language, value_of(report.total, key, report.weights), kind)
                lines.append("• " + labelled(language, translate(language, msgid), value))
        if rank is not None and rank[1] >= 2:
            lines.append(translate(language, WORDS["rank"], rank=digits(language, str(rank[0])),
                                   count=digits(language, str(rank[1]))))
        base = f"{self.public_url}/bulletin/{node.code}/{period.label}"
        lines.append(translate(language, WORDS["links"], page=base, pdf=f"{base}.pdf"))
        return [Reply(text="\n".join(lines), photo_file_ids=[f"/bulletin/{node.code}/{period.label}/chart/rates.png"])]

    async def run(self, stop: asyncio.Event, every: float = 300) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("bulletin delivery pass failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except asyncio.TimeoutError:
                pass
