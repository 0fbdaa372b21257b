"""The monthly bulletin in the chat: on the 1st, each grid chief and centre staff member once, in their
language, across two instances sharing one database; a failed send is retried, never doubled."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import datetime

from sqlalchemy import select, update

from bot.bulletin_delivery import BulletinCourier, due_month
from storage.db import make_engine, make_sessionmaker
from storage.indicators import Period
from storage.models import BulletinDelivery, Person
from storage.timeutil import LOCAL_TZ
from tests.test_indicators import build_november

FIRST_OF_DECEMBER = datetime(2026, 12, 1, 9, 0, tzinfo=LOCAL_TZ)


class Inbox:
    def __init__(self, fail_first: set[int] = frozenset()):
        self.sent: list[tuple[int, str, list[str]]] = []
        self.fail_first = set(fail_first)

    async def send(self, person_id, replies) -> bool:
        await asyncio.sleep(0.01)  # let the other instance run meanwhile
        if person_id in self.fail_first:
            self.fail_first.discard(person_id)
            return False
        self.sent.append((person_id, replies[0].text, replies[0].photo_file_ids))
        return True


def test_due_month():
    assert due_month(FIRST_OF_DECEMBER, 8) == Period.month(2026, 11)
    assert due_month(datetime(2026, 12, 1, 7, 59, tzinfo=LOCAL_TZ), 8) is None
    assert due_month(datetime(2026, 12, 10, 23, 0, tzinfo=LOCAL_TZ), 8) == Period.month(2026, 11)
    assert due_month(datetime(2026, 12, 11, 0, 0, tzinfo=LOCAL_TZ), 8) is None
    assert due_month(datetime(2027, 1, 1, 8, 0, tzinfo=LOCAL_TZ), 8) == Period.month(2026, 12)


async def test_two_instances_send_each_bulletin_once(sessionmaker, world):
    await build_november(sessionmaker, world)
    async with sessionmaker.begin() as session:
        await session.execute(update(Person).where(Person.id == world.centre_t2).values(language="bo"))
    url = sessionmaker.kw["bind"].url.render_as_string(hide_password=False)
    other_engine = make_engine(url)
    try:
        inbox = Inbox(fail_first={world.centre_district})
        one = BulletinCourier(sessionmaker, inbox.send, public_url="https://grid.example", hour=8, worker="one")
        two = BulletinCourier(make_sessionmaker(other_engine), inbox.send, public_url="https://grid.example", hour=8,
                              worker="two")
        await asyncio.gather(one.run_once(FIRST_OF_DECEMBER), two.run_once(FIRST_OF_DECEMBER))
        recipients = {world.chief_g1, world.centre_t1, world.centre_t2, world.centre_district, world.centre_city}
        counts = Counter(person for person, _, _ in inbox.sent)
        assert set(counts) == recipients - {world.centre_district} and max(counts.values()) == 1
        # The failed one is retried after its backoff, by whichever instance comes first, and only once.
        later = FIRST_OF_DECEMBER.replace(hour=10)
        await asyncio.gather(one.run_once(later), two.run_once(later))
        await one.run_once(later.replace(hour=11))
        counts = Counter(person for person, _, _ in inbox.sent)
        assert set(counts) == recipients and max(counts.values()) == 1
        async with sessionmaker() as session:
            rows = list(await session.scalars(select(BulletinDelivery)))
        assert len(rows) == 5 and all(r.sent_at is not None and r.month == "2026-11" for r in rows)
    finally:
        await other_engine.dispose()

    texts = {person: (text, photos) for person, text, photos in inbox.sent}
    text, photos = texts[world.centre_t1]
    assert "一号街道" in text and "2026年11月" in text
    assert "按期结案率：50.0%" in text and "综合指标值（满分100）：61.3" in text
    assert "https://grid.example/bulletin/C-D-T1/2026-11.pdf" in text
    assert photos == ["/bulletin/C-D-T1/2026-11/chart/rates.png"]
    assert "排名" not in text  # only one unit of the district has a score: no rank to give
    text, _ = texts[world.centre_t2]  # reads Tibetan
    assert "ཤང་གཉིས་པ།" in text and "ལོ་༢༠༢༦ ཟླ་༡༡" in text
    figures = text.split("https://")[0]
    assert not re.search(r"[0-9]", figures), figures  # Tibetan digits only, outside the links
    text, _ = texts[world.chief_g1]
    assert "一号网格" in text
