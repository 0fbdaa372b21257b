"""Case store benchmark: N cases (1,000,000 in the issue) in SQLite and in PostgreSQL.

    python -m bench.bench_store --cases 1000000 --backend sqlite|postgresql|both \
        [--pg-url URL] [--sqlite-path PATH]

Run from the repository root. What is measured, and how each number was obtained:

* store path   `storage.cases.CaseStore.open_case`: `open_case` in its own write
               transaction (`writing(session)`), with its case event and outbox
               rows; sequential, one transaction per case, for a sample of the cases
               (--store-sample, default 2,000), with the bulk-filled rows already in
               the tables. This is how the bot writes.
* bulk fill    the other N - sample cases, each with a history of case events that
               matches its state, written straight into `cases`, `case_events` and
               `case_number_counters` in batches: SQLAlchemy Core `insert()`
               executemany on SQLite, COPY through the raw asyncpg connection on
               PostgreSQL (--pg-bulk executemany for Core there too). It only fills
               the tables; it is not how the bot writes. Its time includes
               generating the rows in Python. No notifications are bulk-written.
* lookups      with all N cases present: `load_case(session, number)` for random
               existing numbers and `cases_reported_by(session, resident, limit=20)`
               for random residents, each in a fresh session (as `CaseStore` does),
               sequential, timed with time.perf_counter; median and p99 in ms.

Before the lookups the tables are analysed (SQLite ANALYZE; PostgreSQL VACUUM
ANALYZE and CHECKPOINT), i.e. the steady state autovacuum would reach.
Results: a Markdown table on stdout and bench/results/store-<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from storage import migrate
from storage.cases import CASE_PREFIX, CaseStore, cases_reported_by, load_case
from storage.db import make_engine, make_sessionmaker, writing
from storage.lifecycle import State
from storage.models import (
    Case,
    CaseEvent,
    CaseNumberCounter,
    CaseSource,
    Department,
    Identity,
    Matter,
    Node,
    NodeLevel,
    Notification,
    Person,
    Role,
)
from storage.people import grant_role, person_for_identity
from storage.seed import load_matters, load_nodes
from storage.timeutil import LOCAL_TZ, utcnow
from tests.conftest import MATTERS, TREE

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"
RESULTS = Path(__file__).parent / "results"
UTC = timezone.utc

STAFF = [  # key, role, node code, department code
    ("bench-centre-t1", Role.centre_staff, "C-D-T1", None),
    ("bench-centre-t2", Role.centre_staff, "C-D-T2", None),
    ("bench-centre-d", Role.centre_staff, "C-D", None),
    ("bench-centre-c", Role.centre_staff, "C", None),
    ("bench-worker-g1", Role.grid_worker, "G1", None),
    ("bench-worker-g2", Role.grid_worker, "G2", None),
    ("bench-worker-g3", Role.grid_worker, "G3", None),
    ("bench-chief-g1", Role.grid_chief, "G1", None),
    ("bench-handler-urban", Role.department_handler, None, "urban"),
    ("bench-handler-civil", Role.department_handler, None, "civil"),
]

DESCRIPTIONS = {
    "zh": [
        "楼下路灯坏了三天，晚上很黑", "小区门口的路灯一直闪", "巷子里的路灯不亮了，老人出门不方便",
        "隔壁独居老人好几天没出门，请去看看", "家里老人腿脚不便，希望社区上门探访", "独居老人家里暖气不热",
        "单元楼道灯不亮", "路口路灯白天也亮着，浪费电",
    ],
    "bo": [
        "ལམ་སྒྲོན་ཉིན་གསུམ་རིང་མི་འབར།", "ཁྱིམ་མཚེས་ཀྱི་རྒན་པ་ཉིན་མང་པོར་ཕྱི་ལ་མ་ཐོན།",
        "ལམ་ཕྲན་ནང་གི་ལམ་སྒྲོན་མི་འབར།", "རྒན་པ་གཅིག་པུར་བསྡད་པ་ལ་བལྟ་སྐོར་དགོས།",
    ],
}
ADDRESSES = ["北京东路", "林廓北路", "江苏路", "金珠西路", "朵森格路", "宇拓路", "色拉路", "娘热路"]
RESULTS_TEXT = ["已更换灯泡，恢复照明", "已维修线路", "已上门探访，老人身体良好", "已联系家属并登记随访", "已协调供暖单位处理"]
REJECT_REASONS = ["不属于事项清单范围", "重复上报", "信息不足，无法核实"]

# State mix by age: old cases are mostly closed, recent ones still open.
STATES_OLD = (
    [State.closed, State.rejected, State.handled, State.in_progress, State.transferred, State.accepted, State.reported],
    [86, 7, 2, 2, 1, 1, 1],
)
STATES_RECENT = (
    [State.closed, State.rejected, State.handled, State.in_progress, State.transferred, State.accepted, State.reported],
    [35, 5, 12, 14, 12, 10, 12],
)
RECENT_DAYS = 30


# --------------------------------------------------------------------------------------------
# Small helpers


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Fresh database (blocking: runs before the event loop of the benchmark)


async def _ensure_pg_database(url: str) -> None:
    import asyncpg

    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username or "postgres",
        password=parsed.password, database="postgres",
    )
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database):
            name = parsed.database.replace('"', '""')
            await connection.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {parsed.database}")
    finally:
        await connection.close()


def prepare_database(backend: str, args: argparse.Namespace) -> tuple[str, Path | None]:
    """A freshly migrated database; returns its URL and, for SQLite, a temp dir to remove afterwards."""
    cleanup = None
    if backend == "sqlite":
        if args.sqlite_path:
            path = Path(args.sqlite_path).resolve()
            if path.exists():
                raise SystemExit(f"{path} exists; give a new path (the benchmark wants a fresh database)")
        else:
            cleanup = Path(tempfile.mkdtemp(prefix="gridbot-bench-"))
            path = cleanup / "bench.sqlite3"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = args.pg_url
        asyncio.run(_ensure_pg_database(url))
        migrate.downgrade(url, "base")  # drops every table of a previous run
    migrate.upgrade(url)
    return url, cleanup


# --------------------------------------------------------------------------------------------
# The small world: grid tree, matter list, staff, residents


@dataclass
class World:
    nodes: dict[str, Node]
    grid_codes: list[str]
    grid_weights: list[int]
    township_of: dict[str, Node]  # grid code -> township node
    district: Node
    bbox: dict[str, tuple[float, float, float, float]]  # grid code -> lon0, lat0, lon1, lat1
    matters: dict[str, Matter]
    departments: dict[int, Department]
    staff: dict[str, int]
    residents: list[int]


async def build_world(sessionmaker, engine, residents: int, rng: random.Random) -> World:
    async with sessionmaker.begin() as session:
        await writing(session)
        await load_nodes(session, TREE)
        await load_matters(session, MATTERS)
        nodes = {n.code: n for n in await session.scalars(select(Node))}
        departments = {d.code: d for d in await session.scalars(select(Department))}
        staff = {}
        for key, role, node, department in STAFF:
            person, _ = await person_for_identity(session, "web", key, language="zh", display_name=key)
            await grant_role(
                session, person.id, role,
                node_id=nodes[node].id if node else None,
                department_id=departments[department].id if department else None,
            )
            staff[key] = person.id
        matters = {m.code: m for m in await session.scalars(select(Matter))}

    # Residents: plain Core inserts (10,000 × person_for_identity would only measure itself).
    async with engine.connect() as conn:
        await conn.execution_options(writing=True)
        async with conn.begin():
            first = (await conn.scalar(select(func.max(Person.id)))) + 1
            now = utcnow()
            ids = list(range(first, first + residents))
            for start in range(0, residents, 5000):
                chunk = ids[start:start + 5000]
                await conn.execute(insert(Person), [
                    dict(id=i, display_name=f"居民{i}", language="bo" if rng.random() < 0.3 else "zh",
                         phone=f"139{rng.randrange(10**8):08d}" if rng.random() < 0.5 else None, created_at=now)
                    for i in chunk
                ])
                await conn.execute(insert(Identity), [
                    dict(person_id=i, platform="telegram" if i % 2 else "web", external_id=f"bench-resident-{i}",
                         chat_id=f"bench-resident-{i}", created_at=now)
                    for i in chunk
                ])
            await fix_sequence(conn, "people")

    grid_codes = [c for c, n in nodes.items() if n.level == NodeLevel.grid]
    grid_codes.sort()
    township_of, bbox = {}, {}
    for code in grid_codes:
        path_codes = [c for c in nodes[code].path.split("/") if c]
        township_of[code] = next(nodes[c] for c in path_codes if nodes[c].level == NodeLevel.township)
        ring = nodes[code].boundary["coordinates"][0]
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        bbox[code] = (min(lons), min(lats), max(lons), max(lats))
    district = next(n for n in nodes.values() if n.level == NodeLevel.district)
    return World(
        nodes=nodes, grid_codes=grid_codes, grid_weights=[45, 25, 30][: len(grid_codes)] or [1] * len(grid_codes),
        township_of=township_of, district=district, bbox=bbox, matters=matters,
        departments={d.id: d for d in departments.values()}, staff=staff, residents=ids,
    )


async def fix_sequence(conn, table: str) -> None:
    """After explicit ids on PostgreSQL, move the serial sequence past them."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
        ))


# --------------------------------------------------------------------------------------------
# Bulk fill: realistic cases and their event histories


class CaseFactory:
    """Cases with histories that match their states, numbered per local day like the store does."""

    def __init__(self, world: World, rng: random.Random, cap: datetime):
        self.w, self.rng, self.cap = world, rng, cap
        self.worker_of = {code: world.staff[f"bench-worker-{code.lower()}"] for code in world.grid_codes
                          if f"bench-worker-{code.lower()}" in world.staff}
        self.centre_staff = {
            world.nodes["C-D-T1"].id: world.staff["bench-centre-t1"],
            world.nodes["C-D-T2"].id: world.staff["bench-centre-t2"],
            world.district.id: world.staff["bench-centre-d"],
        }
        self.handler_of = {d.id: world.staff[f"bench-handler-{d.code}"] for d in world.departments.values()}
        self.matter_list = [world.matters["LIGHT"], world.matters["ELDER"]]

    def _t(self, t: datetime) -> datetime:
        return t if t < self.cap else self.cap

    def make(self, case_id: int, number: str, created: datetime, recent: bool) -> tuple[dict, list[dict]]:
        rng, w = self.rng, self.w
        states, weights = STATES_RECENT if recent else STATES_OLD
        state = rng.choices(states, weights)[0]
        grid_code = rng.choices(w.grid_codes, w.grid_weights)[0]
        grid = w.nodes[grid_code]
        matter = self.matter_list[0] if rng.random() < 0.6 else self.matter_list[1]
        patrol = rng.random() < 0.10 and grid_code in self.worker_of
        language = "bo" if rng.random() < 0.3 else "zh"
        anonymous = not patrol and rng.random() < 0.05
        if patrol:
            reporter, reporter_role = self.worker_of[grid_code], "grid_worker"
        else:
            reporter, reporter_role = rng.choice(w.residents), "resident"
        if rng.random() < 0.7:
            lon0, lat0, lon1, lat1 = w.bbox[grid_code]
            lat, lon = round(rng.uniform(lat0, lat1), 6), round(rng.uniform(lon0, lon1), 6)
        else:
            lat = lon = None
        centre = w.township_of[grid_code]
        escalated = state not in (State.reported, State.rejected) and rng.random() < 0.03
        case = dict.fromkeys(CASE_COLUMNS) | dict(  # columns not named here (added later) stay NULL
            id=case_id, number=number, source=(CaseSource.worker_patrol if patrol else CaseSource.resident_report).value,
            state=state, matter_id=matter.id, description=rng.choice(DESCRIPTIONS[language]),
            description_language=language, latitude=lat, longitude=lon,
            address=f"{rng.choice(ADDRESSES)}{rng.randint(1, 300)}号" if rng.random() < 0.6 else None,
            grid_id=grid.id, reporter_id=reporter, anonymous=anonymous,
            contact_phone=None if anonymous or rng.random() < 0.5 else f"138{rng.randrange(10**8):08d}",
            concerned_residents=f"{rng.randint(1, 9)}号院住户" if patrol and rng.random() < 0.5 else None,
            centre_node_id=centre.id, joint_meeting=False, department_id=None, handling_deadline=None,
            verification_deadline=None, accept_deadline=None, rating_deadline=None, extension_count=0,
            pending_extension=None, supervising_node_id=None, result_text=None, rejection_reason=None, verification_outcome=None,
            satisfaction=None, satisfaction_comment=None, created_at=created, updated_at=created, closed_at=None,
            version=1,
        )
        events: list[dict] = []

        def event(actor, role, action, from_state, to_state, at, note=None, data=None):
            events.append(dict(case_id=case_id, actor_id=actor, actor_role=role, action=action, from_state=from_state,
                               to_state=to_state, note=note, data=data or {}, created_at=at))

        t = created
        event(reporter, reporter_role, "report", None, State.reported, t)
        if state == State.reported:
            pass
        elif state == State.rejected:
            t = self._t(t + timedelta(minutes=rng.randint(10, 600)))
            reason = rng.choice(REJECT_REASONS)
            event(self.centre_staff[centre.id], "centre_staff", "reject", State.reported, State.rejected, t,
                  reason, {"reason": reason})
            case.update(rejection_reason=reason, closed_at=t)
        elif state == State.closed and rng.random() < 0.1 and grid_code in self.worker_of:
            t = self._t(t + timedelta(minutes=rng.randint(5, 240)))
            result = rng.choice(RESULTS_TEXT)
            event(self.worker_of[grid_code], "grid_worker", "resolve_on_spot", State.reported, State.closed, t,
                  result, {"result": result})
            case.update(result_text=result, closed_at=t)
        else:
            if escalated:
                t = self._t(t + timedelta(minutes=rng.randint(30, 1440)))
                event(self.centre_staff[centre.id], "centre_staff", "escalate", State.reported, State.reported, t,
                      None, {"centre": w.district.code})
                centre = w.district
                case["centre_node_id"] = centre.id
            t = self._t(t + timedelta(minutes=rng.randint(10, 480)))
            event(self.centre_staff[centre.id], "centre_staff", "accept", State.reported, State.accepted, t)
            if state != State.accepted:
                t = self._t(t + timedelta(minutes=rng.randint(10, 240)))
                deadline = t + timedelta(hours=matter.time_limit_hours)
                department = w.departments[matter.department_id]
                event(self.centre_staff[centre.id], "centre_staff", "transfer", State.accepted, State.transferred, t,
                      None, {"department": department.code, "deadline": deadline.isoformat()})
                case.update(department_id=department.id, handling_deadline=deadline)
                handler = self.handler_of[department.id]
                if state != State.transferred:
                    t = self._t(t + timedelta(minutes=rng.randint(30, 1440)))
                    event(handler, "department_handler", "start_handling", State.transferred, State.in_progress, t)
                if state in (State.handled, State.closed):
                    t = self._t(t + timedelta(minutes=rng.randint(120, 2880)))
                    result = rng.choice(RESULTS_TEXT)
                    data = {"result": result}
                    if matter.needs_onsite_verification:
                        case["verification_deadline"] = t + timedelta(hours=24)
                        data["verify_by"] = case["verification_deadline"].isoformat()
                    event(handler, "department_handler", "submit_result", State.in_progress, State.handled, t,
                          result, data)
                    case["result_text"] = result
                if state == State.closed:
                    t = self._t(t + timedelta(minutes=rng.randint(30, 1200)))
                    if matter.needs_onsite_verification and grid_code in self.worker_of:
                        actor, role = self.worker_of[grid_code], "grid_worker"
                    else:
                        actor, role = self.centre_staff[centre.id], "centre_staff"
                    event(actor, role, "verify_pass", State.handled, State.closed, t, None,
                          {"result": case["result_text"]})
                    case.update(verification_outcome="passed", verification_deadline=None, closed_at=t)
        if state == State.closed and not patrol and not anonymous and rng.random() < 0.4:
            t = self._t(t + timedelta(minutes=rng.randint(10, 4320)))
            rating = rng.choices(["satisfied", "basically_satisfied", "unsatisfied"], [80, 15, 5])[0]
            event(reporter, "resident", "rate", State.closed, State.closed, t, None, {"rating": rating})
            case["satisfaction"] = rating
        case["updated_at"] = t
        case["version"] = len(events)
        return case, events


CASE_COLUMNS = [c.name for c in Case.__table__.columns]
EVENT_COLUMNS = [c.name for c in CaseEvent.__table__.columns if c.name != "id"]
JSON_COLUMNS = {"data", "pending_extension"}


def _records(rows: list[dict], columns: list[str]) -> list[tuple]:
    """Dict rows as COPY records (JSON as text, as the json type wants)."""
    out = []
    for row in rows:
        out.append(tuple((None if row[c] is None else json.dumps(row[c])) if c in JSON_COLUMNS else row[c] for c in columns))
    return out


@dataclass
class BulkResult:
    cases: int = 0
    events: int = 0
    counters: int = 0
    seconds: float = 0.0
    generate_seconds: float = 0.0
    write_seconds: float = 0.0
    day_starts: list[int] = field(default_factory=list)  # cumulative index of each day's first case
    day_strings: list[str] = field(default_factory=list)
    day_counts: list[int] = field(default_factory=list)


async def bulk_fill(engine, world: World, count: int, args, rng: random.Random) -> BulkResult:
    result = BulkResult()
    if count <= 0:
        return result
    started = time.perf_counter()
    now = utcnow()
    days = max(args.days, math.ceil(count / 1000))
    if count / days > 9999:
        raise SystemExit("too many cases per day for 4-digit numbers; raise --days")
    base, extra = divmod(count, days)
    last_day = (now.astimezone(LOCAL_TZ) - timedelta(days=1)).date()  # today's numbers stay for the store path
    first_day = last_day - timedelta(days=days - 1)
    factory = CaseFactory(world, rng, cap=now - timedelta(minutes=1))
    use_copy = engine.dialect.name == "postgresql" and args.pg_bulk == "copy"

    async with engine.connect() as conn:
        await conn.execution_options(writing=True)
        async with conn.begin():
            first_id = (await conn.scalar(select(func.coalesce(func.max(Case.id), 0)))) + 1

        async def write(cases: list[dict], events: list[dict]) -> None:
            t0 = time.perf_counter()
            async with conn.begin():
                if use_copy:
                    await conn.exec_driver_sql("SELECT 1")  # opens the transaction the COPY joins
                    raw = (await conn.get_raw_connection()).driver_connection
                    await raw.copy_records_to_table("cases", records=_records(cases, CASE_COLUMNS), columns=CASE_COLUMNS)
                    await raw.copy_records_to_table(
                        "case_events", records=_records(events, EVENT_COLUMNS), columns=EVENT_COLUMNS
                    )
                else:
                    await conn.execute(insert(Case.__table__), cases)
                    await conn.execute(insert(CaseEvent.__table__), events)
            result.write_seconds += time.perf_counter() - t0
            result.cases += len(cases)
            result.events += len(events)

        cases: list[dict] = []
        events: list[dict] = []
        case_id = first_id
        gen_started = time.perf_counter()
        last_report = time.perf_counter()
        counters = []
        for index in range(days):
            day = first_day + timedelta(days=index)
            in_day = base + (1 if index < extra else 0)
            day_string = day.strftime("%Y%m%d")
            result.day_starts.append(case_id - first_id)
            result.day_strings.append(day_string)
            result.day_counts.append(in_day)
            counters.append(dict(day=day_string, last=in_day))
            day_start = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).astimezone(UTC)
            recent = (last_day - day).days < RECENT_DAYS
            for seq in range(1, in_day + 1):
                # reports between 07:00 and 23:00 local, in number order
                created = day_start + timedelta(seconds=7 * 3600 + (seq - rng.random()) / in_day * 16 * 3600)
                case, case_events = factory.make(case_id, f"{CASE_PREFIX}-{day_string}-{seq:04d}", created, recent)
                cases.append(case)
                events.extend(case_events)
                case_id += 1
                if len(cases) >= args.batch:
                    result.generate_seconds += time.perf_counter() - gen_started
                    await write(cases, events)
                    cases, events = [], []
                    gen_started = time.perf_counter()
                    if time.perf_counter() - last_report > 15:
                        last_report = time.perf_counter()
                        rate = result.cases / (last_report - started)
                        log(f"  bulk: {result.cases:,}/{count:,} cases, {result.events:,} events ({rate:,.0f} cases/s)")
        result.generate_seconds += time.perf_counter() - gen_started
        if cases:
            await write(cases, events)
        async with conn.begin():
            await conn.execute(insert(CaseNumberCounter), counters)
            await fix_sequence(conn, "cases")
        result.counters = len(counters)
    result.seconds = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------------------------
# Store path: the real `open_case`


async def store_path(sessionmaker, world: World, count: int, rng: random.Random) -> tuple[dict, list[str]]:
    store = CaseStore(sessionmaker)
    latencies, numbers = [], []
    matters = ["LIGHT", "ELDER"]
    started = time.perf_counter()
    for _ in range(count):
        language = "bo" if rng.random() < 0.3 else "zh"
        kwargs = dict(
            reporter_id=rng.choice(world.residents), matter_code=rng.choice(matters),
            description=rng.choice(DESCRIPTIONS[language]), language=language,
            grid_code=rng.choices(world.grid_codes, world.grid_weights)[0],
            address=f"{rng.choice(ADDRESSES)}{rng.randint(1, 300)}号",
            contact_phone=f"138{rng.randrange(10**8):08d}" if rng.random() < 0.5 else None,
        )
        t0 = time.perf_counter()
        case = await store.open_case(**kwargs)
        latencies.append(time.perf_counter() - t0)
        numbers.append(case.number)
    seconds = time.perf_counter() - started
    return {"cases": count, "seconds": round(seconds, 3), "cases_per_s": round(count / seconds, 1),
            "latency": summary_ms(latencies)}, numbers


# --------------------------------------------------------------------------------------------
# Reads


async def analyse(engine) -> float:
    t0 = time.perf_counter()
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
            await conn.exec_driver_sql("CHECKPOINT")
    else:
        async with engine.connect() as conn:
            await conn.execution_options(writing=True)
            async with conn.begin():
                await conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0


async def time_lookups(sessionmaker, numbers: list[str], warmup: int) -> dict:
    latencies = []
    for index, number in enumerate(numbers):
        t0 = time.perf_counter()
        async with sessionmaker() as session:
            case = await load_case(session, number)
        elapsed = time.perf_counter() - t0
        assert case.number == number
        if index >= warmup:
            latencies.append(elapsed)
    return summary_ms(latencies)


async def time_lists(sessionmaker, people: list[int], warmup: int) -> dict:
    latencies, returned = [], []
    for index, person_id in enumerate(people):
        t0 = time.perf_counter()
        async with sessionmaker() as session:
            rows = await cases_reported_by(session, person_id, limit=20)
        elapsed = time.perf_counter() - t0
        assert all(c.reporter_id == person_id for c in rows)
        if index >= warmup:
            latencies.append(elapsed)
            returned.append(len(rows))
    out = summary_ms(latencies)
    out["mean_rows_returned"] = round(statistics.fmean(returned), 2)
    return out


def sample_numbers(bulk: BulkResult, store_numbers: list[str], total: int, k: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(k):
        index = rng.randrange(total)
        if index < bulk.cases:
            day = bisect.bisect_right(bulk.day_starts, index) - 1
            out.append(f"{CASE_PREFIX}-{bulk.day_strings[day]}-{index - bulk.day_starts[day] + 1:04d}")
        else:
            out.append(store_numbers[index - bulk.cases])
    return out


# --------------------------------------------------------------------------------------------


async def database_facts(engine, url: str) -> dict:
    facts: dict[str, Any] = {}
    async with engine.connect() as conn:
        for name, model in (("cases", Case), ("case_events", CaseEvent), ("notifications", Notification),
                            ("people", Person)):
            facts[f"rows_{name}"] = await conn.scalar(select(func.count()).select_from(model))
        if engine.dialect.name == "postgresql":
            facts["server_version"] = await conn.scalar(text("SHOW server_version"))
            facts["database_bytes"] = await conn.scalar(text("SELECT pg_database_size(current_database())"))
            for setting in ("shared_buffers", "synchronous_commit", "work_mem"):
                facts[setting] = await conn.scalar(text(f"SHOW {setting}"))
        else:
            facts["server_version"] = await conn.scalar(text("SELECT sqlite_version()"))
            path = Path(url.split("///", 1)[1])
            facts["database_bytes"] = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
            facts["journal_mode"] = await conn.scalar(text("PRAGMA journal_mode"))
    return facts


async def run_backend(backend: str, url: str, args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    load_start = [round(x, 2) for x in os.getloadavg()]
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    try:
        log(f"{backend}: loading grid tree, matters, staff and {args.residents:,} residents")
        world = await build_world(sessionmaker, engine, args.residents, rng)

        sample = min(args.store_sample, args.cases)
        bulk_count = args.cases - sample
        log(f"{backend}: bulk fill of {bulk_count:,} cases ({'COPY' if backend == 'postgresql' and args.pg_bulk == 'copy' else 'Core executemany'}, batches of {args.batch:,})")
        bulk = await bulk_fill(engine, world, bulk_count, args, rng)
        bulk_rows = bulk.cases + bulk.events
        log(f"{backend}: bulk fill done: {bulk.cases:,} cases + {bulk.events:,} events in {bulk.seconds:.1f}s")

        log(f"{backend}: store path: {sample:,} × CaseStore.open_case (one transaction each)")
        store, store_numbers = await store_path(sessionmaker, world, sample, rng)
        log(f"{backend}: store path: {store['cases_per_s']} cases/s")

        analyse_seconds = await analyse(engine)
        log(f"{backend}: analysed in {analyse_seconds:.1f}s; timing reads")
        total = bulk.cases + sample
        numbers = sample_numbers(bulk, store_numbers, total, args.warmup + args.lookups, rng)
        lookup = await time_lookups(sessionmaker, numbers, args.warmup)
        people = [rng.choice(world.residents) for _ in range(args.warmup + args.lookups)]
        listing = await time_lists(sessionmaker, people, args.warmup)
        workers = [world.staff[f"bench-worker-{c.lower()}"] for c in world.grid_codes]
        heavy = await time_lists(sessionmaker, [rng.choice(workers) for _ in range(20 + 200)], 20)
        facts = await database_facts(engine, url)
    finally:
        await engine.dispose()

    return {
        "backend": backend,
        "cases": total,
        "url": make_url(url).render_as_string(hide_password=True),
        "when": utcnow().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "sqlalchemy": sqlalchemy.__version__,
                    "platform": platform.platform(),
                    # other work on the machine skews every number: 1/5/15-minute load averages
                    "load_avg_start": load_start, "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
        "params": {k: v for k, v in vars(args).items() if k not in ("backend", "pg_url", "sqlite_path")},
        "store_path": {**store, "note": "CaseStore.open_case: open_case in its own write transaction, with 1 case "
                       "event and the outbox rows; sequential; measured with the bulk rows already present"},
        "bulk_fill": {
            "cases": bulk.cases, "case_events": bulk.events, "counter_days": bulk.counters,
            "rows": bulk_rows, "seconds": round(bulk.seconds, 3),
            "rows_per_s": round(bulk_rows / bulk.seconds, 1) if bulk.seconds else None,
            "cases_per_s": round(bulk.cases / bulk.seconds, 1) if bulk.seconds else None,
            "generate_seconds": round(bulk.generate_seconds, 3), "write_seconds": round(bulk.write_seconds, 3),
            "method": "COPY (asyncpg copy_records_to_table)" if backend == "postgresql" and args.pg_bulk == "copy"
            else "SQLAlchemy Core insert() executemany",
            "note": "cases + case_events rows; time includes generating the rows in Python; no notifications",
        },
        "analyse_seconds": round(analyse_seconds, 3),
        "lookup_by_number": {**lookup, "call": "load_case(session, number), fresh session each"},
        "list_resident_cases": {**listing, "call": "cases_reported_by(session, resident_id, limit=20), fresh session each"},
        "list_heavy_reporter": {**heavy, "call": "cases_reported_by for the grid workers (patrol reports)"},
        "database": facts,
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "| backend | N cases | store path cases/s | bulk fill rows/s | lookup by number p50 / p99 ms "
        "| list resident's cases p50 / p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        b = r["bulk_fill"]
        lines.append(
            f"| {r['backend']} {r['database']['server_version'].split()[0]} | {r['cases']:,} | {r['store_path']['cases_per_s']:,.0f} "
            f"| {b['rows_per_s'] or 0:,.0f} ({b['cases']:,} cases + {b['case_events']:,} events) "
            f"| {r['lookup_by_number']['p50_ms']:.2f} / {r['lookup_by_number']['p99_ms']:.2f} "
            f"| {r['list_resident_cases']['p50_ms']:.2f} / {r['list_resident_cases']['p99_ms']:.2f} |"
        )
    return "\n".join(lines)


def run_backends(args: argparse.Namespace, run_backend, name: str, prepare=None) -> list[dict]:
    """`run_backend(backend, url, args)` on each backend asked for (`--backend`), each on a fresh
    database (`prepare`, default `prepare_database`); each result goes to results/<name>-<backend>.json."""
    prepare = prepare or prepare_database
    results = []
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        started = time.perf_counter()
        url, cleanup = prepare(backend, args)
        try:
            result = asyncio.run(run_backend(backend, url, args))
        finally:
            if cleanup is not None:
                if getattr(args, "keep", False):
                    log(f"kept {cleanup}")
                else:
                    shutil.rmtree(cleanup, ignore_errors=True)
        result["total_seconds"] = round(time.perf_counter() - started, 1)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"{name}-{backend}.json"
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        log(f"{backend}: done in {result['total_seconds']} s; wrote {out}")
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000, help="total cases (store sample + bulk fill)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"default {DEFAULT_PG_URL}; its tables are dropped")
    parser.add_argument("--sqlite-path", help="a new file (default: a temp file, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary SQLite file")
    parser.add_argument("--store-sample", type=int, default=2000, help="cases created through CaseStore.open_case")
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=2000, help="timed lookups and timed listings, each")
    parser.add_argument("--warmup", type=int, default=200, help="untimed reads before each timed series")
    parser.add_argument("--batch", type=int, default=10_000, help="bulk fill cases per batch (events follow)")
    parser.add_argument("--days", type=int, default=1095, help="days the bulk-filled numbers spread over (min)")
    parser.add_argument("--pg-bulk", choices=["copy", "executemany"], default="copy")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)

    results = run_backends(args, run_backend, "store")
    print(markdown(results))


if __name__ == "__main__":
    main()
