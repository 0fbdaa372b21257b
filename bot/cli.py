"""The `gridbot` command: database, matter list, demo data, staff invitations, tokens, and `run`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from storage import migrate
from storage.db import database_url, run_in_transaction, sqlite_path
from storage.seed import MATTERS_FILE, is_empty, load_demo, load_matters, read_yaml


def _session_scope(func):
    async def wrapper(*args):
        return await run_in_transaction(func, *args)

    return wrapper


@_session_scope
async def _load_matters(session, path: str):
    return await load_matters(session, read_yaml(path))


@_session_scope
async def _load_demo(session):
    return await load_demo(session)


@_session_scope
async def _is_empty(session):
    return await is_empty(session)


def cmd_db(args) -> int:
    if args.action == "upgrade":
        migrate.upgrade()
        print(f"database at {_where()} is up to date")
    else:
        migrate.downgrade(revision=args.revision)
        print(f"database at {_where()} downgraded to {args.revision}")
    return 0


def cmd_matters(args) -> int:
    counts = asyncio.run(_load_matters(args.file))
    print("matter list loaded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_demo(args) -> int:
    migrate.upgrade()
    result = asyncio.run(_load_demo())
    print(f"demo district loaded: {result['nodes']} places, {result['people']} demo accounts, matters {result['matters']}")
    return 0


def prepare_database() -> None:
    """Upgrade the schema; on an empty database, load the demo district (the embedded default)."""
    migrate.upgrade()
    from bot.settings import Settings

    if Settings().load_demo and asyncio.run(_is_empty()):
        result = asyncio.run(_load_demo())
        print(f"empty database: loaded the fictional demo district ({result['nodes']} places)")


def cmd_run(args) -> int:
    from bot.server import serve
    from bot.settings import Settings

    settings = Settings()
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    prepare_database()
    asyncio.run(serve(settings))
    return 0


def _where() -> str:
    url = database_url()
    path = sqlite_path(url)
    return str(path.resolve()) if path else url.split("@")[-1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridbot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema (Alembic)")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("--revision", default="base")
    db.set_defaults(func=cmd_db)

    matters = sub.add_parser("matters", help="the published matter list")
    matters.add_argument("action", choices=["load"])
    matters.add_argument("file", nargs="?", default=str(MATTERS_FILE))
    matters.set_defaults(func=cmd_matters)

    demo = sub.add_parser("demo", help="the fictional demo district")
    demo.add_argument("action", choices=["load"])
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="serve the web chat, the APIs and (with a token) Telegram")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.set_defaults(func=cmd_run)

    for extra in _extra_commands():
        extra(sub)
    return parser


def _extra_commands():
    """Commands contributed by features (staff invitations, API tokens)."""
    from bot import privacy_cli, staff_cli
    from bot.web import cli as web_cli
    from bot.wechat import cli as wechat_cli

    return staff_cli.COMMANDS + web_cli.COMMANDS + privacy_cli.COMMANDS + wechat_cli.COMMANDS


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
