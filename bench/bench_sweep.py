"""Supervision sweep benchmark: 1,000,000 cases with 1 % of them due, on SQLite and PostgreSQL.

    python -m bench.bench_sweep --cases 1000000 --backend sqlite|postgresql|both [--pg-url URL]

Run from the repository root; it creates what it needs (a temporary SQLite file; on PostgreSQL the
database of --pg-url, default `bench_sweep`, whose tables are dropped first). The store is filled in
bulk: 90 % closed cases (each with one milestone already fired, as history), 10 % open cases being
handled, each with its three handling milestones (remind, urge, escalate_overdue) armed; for 1 % of
all cases the reminder is due now. Then, timed with time.perf_counter:

* find         the sweep's query for due milestones (`supervision.due_milestones`, one batch,
               with its row locks on PostgreSQL), repeated in transactions that are rolled back;
* pass         one sweep pass: `supervision.sweep_once` firing one batch (default 200) as lifecycle
               steps (event, notifications) and committing, repeated until nothing is due;
* idle sweep   `supervision.sweep` when nothing is due, as it runs every GRIDBOT_SWEEP_SECONDS.

Results: a Markdown table on stdout and bench/results/sweep-<backend>.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from datetime import timedelta

import sqlalchemy
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from storage import supervision
from storage.db import make_engine, make_sessionmaker, writing
from storage.lifecycle import State
from storage.models import Case, CaseMilestone, CaseSource
from storage.timeutil import utcnow

from .bench_store import World, build_world, fix_sequence, log, run_backends, summary_ms

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_sweep"
CASE_COLUMNS = [c.name for c in Case.__table__.columns]
MILESTONE_COLUMNS = [c.name for c in CaseMilestone.__table__.columns if c.name != "id"]


def case_row(world: World, case_id: int, state: str, created, rng: random.Random) -> dict:
    grid_code = rng.choice(world.grid_codes)
    matter = world.matters["LIGHT"]
    open_case = state != State.closed
    return dict.fromkeys(CASE_COLUMNS) | dict(  # columns not named here (added later) stay NULL
        id=case_id, number=f"LS-{created:%Y%m%d}-{case_id:07d}", source=CaseSource.resident_report.value, state=state,
        matter_id=matter.id, description="楼下路灯坏了三天", description_language="zh", latitude=None, longitude=None,
        address=None, grid_id=world.nodes[grid_code].id, reporter_id=rng.choice(world.residents), anonymous=False,
        contact_phone=None, concerned_residents=None, centre_node_id=world.township_of[grid_code].id,
        joint_meeting=False, department_id=matter.department_id, accept_deadline=created + timedelta(hours=2),
        handling_deadline=created + timedelta(hours=72), verification_deadline=None,
        rating_deadline=None if open_case else created + timedelta(days=10), extension_count=0,
        pending_extension=None, supervising_node_id=None, result_text=None if open_case else "已更换灯泡",
        rejection_reason=None, verification_outcome=None if open_case else "passed", satisfaction=None,
        satisfaction_comment=None, created_at=created, updated_at=created,
        closed_at=None if open_case else created + timedelta(days=3), version=3,
    )


async def fill(engine, world: World, count: int, due_share: float, open_share: float, rng: random.Random) -> dict:
    """Cases and milestones in bulk; returns how many milestones are due now."""
    now = utcnow()
    use_copy = engine.dialect.name == "postgresql"
    due_every = round(1 / due_share)
    open_every = round(1 / open_share)
    started = time.perf_counter()
    totals = {"cases": 0, "milestones": 0, "due": 0}
    async with engine.connect() as conn:
        await conn.execution_options(writing=True)

        async def write(cases: list[dict], milestones: list[dict]) -> None:
            async with conn.begin():
                if use_copy:
                    await conn.exec_driver_sql("SELECT 1")
                    raw = (await conn.get_raw_connection()).driver_connection
                    await raw.copy_records_to_table("cases", columns=CASE_COLUMNS,
                                                    records=[tuple(c[k] for k in CASE_COLUMNS) for c in cases])
                    await raw.copy_records_to_table("case_milestones", columns=MILESTONE_COLUMNS,
                                                    records=[tuple(m[k] for k in MILESTONE_COLUMNS) for m in milestones])
                else:
                    await conn.execute(insert(Case.__table__), cases)
                    await conn.execute(insert(CaseMilestone.__table__), milestones)
            totals["cases"] += len(cases)
            totals["milestones"] += len(milestones)

        cases, milestones = [], []
        for case_id in range(1, count + 1):
            due = case_id % due_every == 0
            is_open = due or case_id % open_every == 0
            created = now - (timedelta(hours=rng.uniform(56, 66)) if due else timedelta(hours=rng.uniform(1, 50)) if is_open
                             else timedelta(days=rng.uniform(5, 1000)))
            case = case_row(world, case_id, State.transferred if is_open else State.closed, created, rng)
            cases.append(case)
            deadline = case["handling_deadline"]
            if is_open:
                for trigger, at in (("remind", created + timedelta(hours=54)), ("urge", deadline),
                                    ("escalate_overdue", deadline + timedelta(days=1))):
                    milestones.append(dict(case_id=case_id, stage="handle", trigger=trigger, deadline=deadline,
                                           due_at=at, fired_at=None, event_id=None))
                totals["due"] += due
            else:  # history: a reminder fired long ago
                milestones.append(dict(case_id=case_id, stage="handle", trigger="remind", deadline=deadline,
                                       due_at=created + timedelta(hours=54), fired_at=created + timedelta(hours=54),
                                       event_id=None))
            if len(cases) >= 20_000:
                await write(cases, milestones)
                cases, milestones = [], []
                if case_id % 200_000 == 0:
                    log(f"  fill: {case_id:,}/{count:,} cases")
        if cases:
            await write(cases, milestones)
        async with conn.begin():
            await fix_sequence(conn, "cases")
    totals["seconds"] = round(time.perf_counter() - started, 1)
    return totals


async def analyse(engine) -> None:
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()


async def time_find(sessionmaker, batch: int, repeats: int) -> dict:
    seconds = []
    for _ in range(repeats):
        async with sessionmaker() as session:
            async with session.begin():
                t0 = time.perf_counter()
                rows = await supervision.due_milestones(session, utcnow(), batch)
                seconds.append(time.perf_counter() - t0)
                assert len(rows) == batch
                await session.rollback()
    return summary_ms(seconds)


async def time_passes(sessionmaker, batch: int) -> tuple[dict, int, float]:
    seconds, fired = [], 0
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        async with sessionmaker.begin() as session:
            await writing(session)
            result = await supervision.sweep_once(session, utcnow(), batch)
        seconds.append(time.perf_counter() - t0)
        fired += result.total
        if result.total < batch:
            break
    return summary_ms(seconds), fired, time.perf_counter() - started


async def time_idle(sessionmaker, repeats: int) -> dict:
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = await supervision.sweep(sessionmaker)
        seconds.append(time.perf_counter() - t0)
        assert result.total == 0
    return summary_ms(seconds)


async def run_backend(backend: str, url: str, args) -> dict:
    rng = random.Random(args.seed)
    load_start = [round(x, 2) for x in os.getloadavg()]
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    try:
        log(f"{backend}: world and {args.residents:,} residents")
        world = await build_world(sessionmaker, engine, args.residents, rng)
        log(f"{backend}: bulk fill of {args.cases:,} cases with their milestones")
        filled = await fill(engine, world, args.cases, args.due, args.open, rng)
        log(f"{backend}: {filled}")
        await analyse(engine)
        async with sessionmaker() as session:
            due_now = await supervision.pending_count(session)
            total_cases = await session.scalar(select(func.count()).select_from(Case))
        log(f"{backend}: {due_now:,} milestones due among {total_cases:,} cases; timing")
        find = await time_find(sessionmaker, args.batch, args.repeats)
        passes, fired, drain_seconds = await time_passes(sessionmaker, args.batch)
        idle = await time_idle(sessionmaker, args.repeats)
        log(f"{backend}: find p50 {find['p50_ms']} ms, pass p50 {passes['p50_ms']} ms, idle p50 {idle['p50_ms']} ms")
    finally:
        await engine.dispose()
    return {
        "backend": backend,
        "cases": total_cases,
        "due": due_now,
        "url": make_url(url).render_as_string(hide_password=True),
        "when": utcnow().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "sqlalchemy": sqlalchemy.__version__,
                    "load_avg_start": load_start, "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
        "params": {k: v for k, v in vars(args).items() if k not in ("backend", "pg_url", "sqlite_path")},
        "fill": filled,
        "find_due": {**find, "call": f"supervision.due_milestones(limit={args.batch}), rolled back"},
        "sweep_pass": {**passes, "call": f"supervision.sweep_once(limit={args.batch}) + commit",
                       "passes": passes["count"], "fired": fired, "drain_seconds": round(drain_seconds, 2),
                       "milestones_per_s": round(fired / drain_seconds, 1) if drain_seconds else None},
        "idle_sweep": {**idle, "call": "supervision.sweep() with nothing due"},
    }


def markdown(results: list[dict]) -> str:
    batch = results[0]["params"]["batch"] if results else supervision.BATCH
    lines = [f"| backend | cases | due | find a batch p50 / p99 | one pass (fires {batch}) p50 / p99 | drain | idle sweep p50 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        f, p, i = r["find_due"], r["sweep_pass"], r["idle_sweep"]
        lines.append(f"| {r['backend']} | {r['cases']:,} | {r['due']:,} | {f['p50_ms']:.1f} / {f['p99_ms']:.1f} ms "
                     f"| {p['p50_ms']:.0f} / {p['p99_ms']:.0f} ms | {p['fired']:,} in {p['drain_seconds']:.1f} s "
                     f"({p['milestones_per_s']:,.0f}/s) | {i['p50_ms']:.1f} ms |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"default {DEFAULT_PG_URL}; its tables are dropped")
    parser.add_argument("--sqlite-path", help="a new file (default: a temp file, removed afterwards)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--due", type=float, default=0.01, help="share of cases with a milestone due now")
    parser.add_argument("--open", type=float, default=0.10, help="share of cases still open")
    parser.add_argument("--batch", type=int, default=supervision.BATCH)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)

    results = run_backends(args, run_backend, "sweep")
    print(markdown(results))


if __name__ == "__main__":
    main()
