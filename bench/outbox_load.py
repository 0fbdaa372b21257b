"""Filling the outbox fast: people with a case each and N notifications owed to them.

Used by `bench/bench_dispatch.py` and the dispatcher's tests. Rows are inserted in bulk (the
store's own path is measured by bench_store); each notification is about the recipient's
own case, as the dispatcher sends a resident's notices without further checks.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import writing
from storage.models import Case, CaseEvent, CaseSource, Department, Identity, Matter, Node, NodeLevel, Notification, Person
from storage.timeutil import utcnow

_batches = itertools.count(1)


async def _place(session: AsyncSession) -> tuple[int, int]:
    """A grid and a matter to file cases under: the first ones there are, or a minimal pair."""
    grid = await session.scalar(select(Node.id).where(Node.level == NodeLevel.grid).order_by(Node.id).limit(1))
    matter = await session.scalar(select(Matter.id).order_by(Matter.id).limit(1))
    if grid is None:
        node = Node(code="BENCH-G", level=NodeLevel.grid, path="/BENCH-G/", name_zh="测试网格", name_bo="ཚོད་ལྟའི་དྲ་མིག")
        session.add(node)
        await session.flush()
        grid = node.id
    if matter is None:
        department = Department(code="bench", name_zh="测试局", name_bo="ཚོད་ལྟའི་ཅུད།")
        session.add(department)
        await session.flush()
        row = Matter(code="BENCH", name_zh="路灯不亮", name_bo="ལམ་སྒྲོན་མི་འབར།", work_kind="safety_hazard",
                     department_id=department.id, time_limit_hours=72, published_at=utcnow())
        session.add(row)
        await session.flush()
        matter = row.id
    return grid, matter


async def enqueue(
    sessionmaker: async_sessionmaker[AsyncSession], recipients: list[tuple[str, str, int]], *, language: str = "zh"
) -> dict[str, list[int]]:
    """For each (platform, chat id, count): a person reachable there, one case, and `count`
    notifications in order. Returns chat id → notification ids (in order)."""
    batch = next(_batches)
    now = utcnow()
    ids: dict[str, list[int]] = {}
    async with sessionmaker.begin() as session:
        await writing(session)
        grid, matter = await _place(session)
        matter_code = await session.scalar(select(Matter.code).where(Matter.id == matter))
        for index, (platform, chat, count) in enumerate(recipients):
            person = Person(language=language, language_chosen=True)
            session.add(person)
            await session.flush()
            session.add(Identity(person_id=person.id, platform=platform, external_id=chat, chat_id=chat))
            number = f"LS-B{batch:03d}-{index:06d}"
            case_id = (await session.execute(insert(Case).returning(Case.id), [dict(
                number=number, source=CaseSource.resident_report, state="accepted", matter_id=matter,
                description="bench", description_language=language, grid_id=grid, reporter_id=person.id,
                centre_node_id=grid, created_at=now, updated_at=now, version=1,
            )])).scalar_one()
            event_ids = list((await session.execute(insert(CaseEvent).returning(CaseEvent.id), [dict(
                case_id=case_id, actor_role="centre_staff", action="accept", from_state="reported",
                to_state="accepted", data={}, created_at=now,
            ) for _ in range(count)])).scalars())
            ids[chat] = list((await session.execute(insert(Notification).returning(Notification.id), [dict(
                case_id=case_id, event_id=event_id, recipient_id=person.id, message_key="accept.reporter",
                params={"number": number, "matter": matter_code, "n": position}, created_at=now,
                next_attempt_at=now - timedelta(seconds=1), attempts=0,
            ) for position, event_id in enumerate(event_ids)])).scalars())
    return ids
