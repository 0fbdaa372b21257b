"""Indicators benchmark: one township and one month over a store of N cases (1,000,000 in issue 12).

    python -m bench.bench_indicators --cases 1000000 --backend sqlite|postgresql|both [--pg-url URL]

Run from the repository root. It creates what it needs: a fresh SQLite file (temporary) and/or a fresh
PostgreSQL database (default `bench_indicators`; its tables are dropped), filled by bench.bench_store's
bulk fill: the test tree (township C-D-T1 holds grids G1 and G2, 70 % of all cases; C-D-T2 the rest),
cases over --days days up to yesterday, each with the event history its state implies (reports,
acceptances, transfers with their deadlines, results, verifications, ratings, rejections, resolutions on
the spot). Then, after ANALYZE:

* township month  `storage.indicators.compute` for C-D-T1 and the last complete month (its counts, rates,
                  times and composite score, and those of its child units), in a fresh session each time:
                  the first call (cold) and the median and max of --repeat further calls;
* district month  the same for district C-D (two townships);
* reference       `SELECT count(*)` of the township's cases reported that month, the cheapest query
                  touching the same rows: the ratio says how much the indicators cost on top.

Results: a Markdown table on stdout and bench/results/indicators-<backend>.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from pathlib import Path

import sqlalchemy
from sqlalchemy import func, select

from bench import bench_store
from storage import indicators
from storage.db import make_engine, make_sessionmaker
from storage.indicators import Period, Scope
from storage.models import Case, CaseEvent, Node
from storage.timeutil import utcnow

RESULTS = Path(__file__).parent / "results"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_indicators"


async def timed(sessionmaker, work, repeat: int) -> dict:
    async def once():
        started = time.perf_counter()
        async with sessionmaker() as session:
            value = await work(session)
        return time.perf_counter() - started, value

    cold, value = await once()
    warm = [(await once())[0] for _ in range(repeat)]
    return {"cold_s": round(cold, 3), "median_s": round(statistics.median(warm), 3), "max_s": round(max(warm), 3),
            "repeat": repeat, "value": value}


async def run_backend(backend: str, url: str, args) -> dict:
    rng = random.Random(args.seed)
    load_start = [round(x, 2) for x in os.getloadavg()]
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    try:
        bulk_seconds = None
        if not args.reuse:
            bench_store.log(f"{backend}: world and bulk fill of {args.cases:,} cases")
            world = await bench_store.build_world(sessionmaker, engine, args.residents, rng)
            bulk = await bench_store.bulk_fill(engine, world, args.cases, args, rng)
            bulk_seconds = round(bulk.seconds, 1)
            bench_store.log(f"{backend}: {bulk.cases:,} cases + {bulk.events:,} events in {bulk.seconds:.0f}s; analysing")
            await bench_store.analyse(engine)
        month = Period.of(utcnow()).previous()
        async with sessionmaker() as session:
            township = await session.scalar(select(Node).where(Node.code == "C-D-T1"))
            district = await session.scalar(select(Node).where(Node.code == "C-D"))
            grid_ids = list(await session.scalars(select(Node.id).where(Node.path.startswith(township.path),
                                                                        Node.level == "grid")))
            total_cases = await session.scalar(select(func.count(Case.id)))
            total_events = await session.scalar(select(func.count(CaseEvent.id)))

        async def figures(node):
            async def work(session):
                report = await indicators.compute(session, Scope(node), month)
                data = report.total.as_dict(report.weights)
                return {"reported": data["counts"]["reported"], "due": data["counts"]["due"],
                        "closed": data["counts"]["closed"], "composite_score": data.get("composite_score"),
                        "children": len(report.children)}
            return work

        async def reference(session):
            return await session.scalar(select(func.count(Case.id)).where(
                Case.grid_id.in_(grid_ids), Case.created_at >= month.start, Case.created_at < month.end))

        bench_store.log(f"{backend}: timing {month.label}")
        ref = await timed(sessionmaker, reference, args.repeat)
        town = await timed(sessionmaker, await figures(township), args.repeat)
        dist = await timed(sessionmaker, await figures(district), args.repeat)
        facts = await bench_store.database_facts(engine, url)
    finally:
        await engine.dispose()
    return {
        "backend": backend, "cases": total_cases, "case_events": total_events, "month": month.label,
        "when": utcnow().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "sqlalchemy": sqlalchemy.__version__,
                    "load_avg_start": load_start, "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
        "params": {k: v for k, v in vars(args).items() if k not in ("backend", "pg_url", "sqlite_path")},
        "bulk_fill_seconds": bulk_seconds,
        "reference_count": ref, "township_month": town, "district_month": dist,
        "ratio_township_to_reference": round(town["median_s"] / ref["median_s"], 1) if ref["median_s"] else None,
        "database": facts,
    }


def markdown(results: list[dict]) -> str:
    lines = ["| backend | cases | township-month cases | township month cold / median / max | district month median "
             "| reference count(*) median | ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        t, d, ref = r["township_month"], r["district_month"], r["reference_count"]
        lines.append(
            f"| {r['backend']} {r['database']['server_version'].split()[0]} | {r['cases']:,} | {t['value']['reported']:,} "
            f"| {t['cold_s']:.2f} / {t['median_s']:.2f} / {t['max_s']:.2f} s | {d['median_s']:.2f} s "
            f"| {ref['median_s'] * 1000:.0f} ms | ×{r['ratio_township_to_reference']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_indicators", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"default {DEFAULT_PG_URL}; its tables are dropped")
    parser.add_argument("--sqlite-path", help="a new file (default: a temporary file, removed afterwards)")
    parser.add_argument("--residents", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=1095, help="days the cases spread over, up to yesterday")
    parser.add_argument("--pg-bulk", choices=["copy", "executemany"], default="copy")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--reuse", action="store_true",
                        help="time an existing database filled by an earlier run (--sqlite-path, --pg-url)")
    args = parser.parse_args(argv)

    def prepare(backend: str, args: argparse.Namespace):
        if args.reuse:  # a database an earlier run filled
            return (args.pg_url if backend == "postgresql" else f"sqlite+aiosqlite:///{Path(args.sqlite_path).resolve()}"), None
        return bench_store.prepare_database(backend, args)

    results = bench_store.run_backends(args, run_backend, "indicators", prepare)
    print(markdown(results))


if __name__ == "__main__":
    main()
