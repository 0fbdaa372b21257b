"""`gridbot bulletin --month 2026-11 --node CODE [--out DIR]`: write the unit's bulletin page and PDF."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from storage import grids
from storage.db import make_engine, make_sessionmaker
from storage.indicators import InvalidPeriod, Period

from . import bulletin


async def _write(node_code: str, month: str, out: Path) -> tuple[Path, Path]:
    period = Period.parse_month(month)
    engine = make_engine()
    try:
        async with make_sessionmaker(engine)() as session:
            node = await grids.node_by_code(session, node_code)
            if node is None:
                raise InvalidPeriod(f"no grid or area {node_code!r}", field="node")
            built = await bulletin.build(session, node, period)
    finally:
        await engine.dispose()
    return await asyncio.to_thread(bulletin.write, built, out)


def cmd_bulletin(args) -> int:
    from bot.cli import prepare_database

    prepare_database()
    try:
        page, pdf = asyncio.run(_write(args.node, args.month, Path(args.out)))
    except InvalidPeriod as exc:
        print(f"gridbot bulletin: {exc}", file=sys.stderr)
        return 2
    print(f"bulletin written: {page} and {pdf}")
    return 0


def add_bulletin_command(subparsers) -> None:
    parser = subparsers.add_parser("bulletin", help="write a unit's monthly bulletin (page and PDF)")
    parser.add_argument("--month", required=True, help="YYYY-MM, e.g. 2026-11")
    parser.add_argument("--node", required=True, help="code of a grid, community, township, district or city")
    parser.add_argument("--out", default="bulletins", help="folder to write into (default: bulletins)")
    parser.set_defaults(func=cmd_bulletin)


COMMANDS = [add_bulletin_command]
