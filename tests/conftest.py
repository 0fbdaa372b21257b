"""Fixtures: a migrated database per backend (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import migrate
from storage.db import make_engine, make_sessionmaker
from storage.models import Base, Person, Role
from storage.people import grant_role, person_for_identity
from storage.seed import load_matters, load_nodes

PG_URL = os.environ.get("GRIDBOT_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def migrated_urls(tmp_path_factory) -> dict[str, str]:
    urls = {"sqlite": f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"}
    if PG_URL:
        urls["postgresql"] = PG_URL
        migrate.downgrade(PG_URL, "base")
    for url in urls.values():
        migrate.upgrade(url)
    return urls


@pytest.fixture(params=BACKENDS)
async def sessionmaker(request, migrated_urls) -> async_sessionmaker[AsyncSession]:
    """A clean, migrated database on each backend."""
    url = migrated_urls[request.param]
    engine = make_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if request.param == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))
    yield make_sessionmaker(engine)
    await engine.dispose()


def square(lon: float, lat: float, size: float = 0.004) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


TREE = [
    dict(code="C", level="city", name_zh="拉萨市", name_bo="ལྷ་ས་གྲོང་ཁྱེར།", children=[
        dict(code="C-D", level="district", name_zh="测试区", name_bo="ཚོད་ལྟའི་ཆུས།", children=[
            dict(code="C-D-T1", level="township", name_zh="一号街道", name_bo="ཁྲོམ་གཞུང་དང་པོ།", children=[
                dict(code="C-D-T1-C1", level="community", name_zh="甲社区", name_bo="སྡེ་ཁུལ་ཀ", children=[
                    dict(code="G1", level="grid", kind="comprehensive", name_zh="一号网格", name_bo="དྲ་མིག་དང་པོ།",
                         supervision_phone="0891-0000001", boundary=square(91.120, 29.650)),
                    dict(code="G2", level="grid", kind="dedicated", name_zh="市场网格", name_bo="ཚོང་ར་དྲ་མིག",
                         supervision_phone="0891-0000002", boundary=square(91.130, 29.650)),
                ]),
            ]),
            dict(code="C-D-T2", level="township", name_zh="二号乡", name_bo="ཤང་གཉིས་པ།", children=[
                dict(code="C-D-T2-V1", level="community", name_zh="乙村", name_bo="གྲོང་ཚོ་ཁ", children=[
                    dict(code="G3", level="grid", kind="comprehensive", name_zh="三号网格", name_bo="དྲ་མིག་གསུམ་པ།",
                         boundary=square(91.140, 29.660)),
                ]),
            ]),
        ]),
    ]),
]

MATTERS = {
    "departments": [
        dict(code="urban", name_zh="城市管理局", name_bo="གྲོང་ཁྱེར་དོ་དམ་ཅུད།"),
        dict(code="civil", name_zh="民政局", name_bo="དམངས་སྲིད་ཅུད།"),
    ],
    "matters": [
        dict(code="LIGHT", work_kind="safety_hazard", name_zh="路灯不亮", name_bo="ལམ་སྒྲོན་མི་འབར།",
             department="urban", time_limit_hours=72, needs_onsite_verification=True,
             keywords_zh=["路灯", "灯"], keywords_bo=["ལམ་སྒྲོན"]),
        dict(code="ELDER", work_kind="vulnerable_groups", name_zh="独居老人探访", name_bo="རྒན་པ་གཅིག་པུར་བསྡད་པ་ལ་བལྟ་སྐོར།",
             department="civil", time_limit_hours=48, needs_onsite_verification=False,
             keywords_zh=["老人"], keywords_bo=["རྒན་པ"]),
    ],
}


@dataclass
class World:
    """Ids of the people in the small test tree."""

    resident: int
    other_resident: int
    worker_g1: int
    worker_g3: int
    chief_g1: int
    centre_t1: int
    centre_t2: int
    centre_district: int
    centre_city: int
    handler_urban: int
    handler_civil: int


async def _person(session, key: str, language: str = "zh") -> Person:
    person, _ = await person_for_identity(session, "web", key, language=language, display_name=key)
    return person


@pytest.fixture
async def world(sessionmaker) -> World:
    async with sessionmaker.begin() as session:
        await load_nodes(session, TREE)
        await load_matters(session, MATTERS)
        from sqlalchemy import select

        from storage.models import Department, Node

        nodes = {n.code: n.id for n in await session.scalars(select(Node))}
        departments = {d.code: d.id for d in await session.scalars(select(Department))}
        ids = {}
        for key, language in [("resident", "zh"), ("other_resident", "bo")]:
            ids[key] = (await _person(session, key, language)).id
        staff = [
            ("worker_g1", Role.grid_worker, "G1", None),
            ("worker_g3", Role.grid_worker, "G3", None),
            ("chief_g1", Role.grid_chief, "G1", None),
            ("centre_t1", Role.centre_staff, "C-D-T1", None),
            ("centre_t2", Role.centre_staff, "C-D-T2", None),
            ("centre_district", Role.centre_staff, "C-D", None),
            ("centre_city", Role.centre_staff, "C", None),
            ("handler_urban", Role.department_handler, None, "urban"),
            ("handler_civil", Role.department_handler, None, "civil"),
        ]
        for key, role, node, department in staff:
            person = await _person(session, key, "bo" if key.endswith("g3") else "zh")
            await grant_role(
                session, person.id, role,
                node_id=nodes[node] if node else None,
                department_id=departments[department] if department else None,
            )
            ids[key] = person.id
    return World(**ids)


@pytest.fixture
async def demo(sessionmaker):
    """The bundled fictional district, matter list and demo accounts."""
    from storage.seed import load_demo

    async with sessionmaker.begin() as session:
        await load_demo(session)
    return sessionmaker
