"""`gridbot token …`: per-account tokens for the case API and Open311 (`api_key`).

    gridbot token create --person demo-centre-gesang --name "district dashboard" --scope read --scope act --days 30
    gridbot token list [--person WEB_ID_OR_ID]
    gridbot token revoke TOKEN_ID            # or: --person WEB_ID_OR_ID (all of their tokens)

The token is printed once, alone on standard output; only its SHA-256 hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from storage import api_tokens
from storage.db import run_in_transaction
from storage.timeutil import local


_in_transaction = run_in_transaction


def _prepare() -> None:
    """Upgrade the schema (and load the demo district into an empty database, as `gridbot run` does)."""
    from bot.cli import prepare_database

    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the token alone
        prepare_database()


async def _create(session, person_ref: str, name: str, scopes: list[str], days: int):
    person = await api_tokens.find_person(session, person_ref)
    token, secret = await api_tokens.create_token(session, person.id, name, scopes=scopes, days=days)
    return person, token, secret


async def _revoke(session, token_id: int | None, person_ref: str | None) -> int:
    if person_ref is not None:
        person = await api_tokens.find_person(session, person_ref)
        return await api_tokens.revoke(session, person_id=person.id)
    return await api_tokens.revoke(session, token_id=token_id)


async def _list(session, person_ref: str | None):
    person_id = (await api_tokens.find_person(session, person_ref)).id if person_ref else None
    return await api_tokens.list_tokens(session, person_id)


def _when(moment) -> str:
    return local(moment).strftime("%Y-%m-%d %H:%M") if moment else "-"


def cmd_token(args) -> int:
    _prepare()
    try:
        if args.action == "create":
            scopes = args.scope or ["read"]
            person, token, secret = asyncio.run(_in_transaction(_create, args.person, args.name or "", scopes, args.days))
            print(f"token {token.id} for person {person.id} ({person.display_name or '-'}), scopes "
                  f"{', '.join(token.scopes)}, valid until {_when(token.expires_at)} (Asia/Shanghai); "
                  "it is shown only now, keep it safe:", file=sys.stderr)
            print(secret)
        elif args.action == "revoke":
            if (args.token_id is None) == (args.person is None):
                print("give a TOKEN_ID or --person", file=sys.stderr)
                return 2
            count = asyncio.run(_in_transaction(_revoke, args.token_id, args.person))
            print(f"revoked {count} token(s)")
        else:
            tokens = asyncio.run(_in_transaction(_list, args.person))
            print(f"{'id':>4}  {'person':>6}  {'created':16}  {'last used':16}  {'expires':16}  {'revoked':16}  "
                  f"{'scopes':17}  name")
            for t in tokens:
                print(f"{t.id:>4}  {t.person_id:>6}  {_when(t.created_at):16}  {_when(t.last_used_at):16}  "
                      f"{_when(t.expires_at):16}  {_when(t.revoked_at):16}  {','.join(t.scopes or []):17}  {t.name}")
    except api_tokens.TokenError as exc:
        print(f"gridbot token: {exc}", file=sys.stderr)
        return 1
    return 0


def add_token_command(subparsers) -> None:
    token = subparsers.add_parser(
        "token", help="API tokens for the case API and Open311",
        description="Per-account tokens for the case API (Authorization: Bearer) and Open311 (api_key).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[1],
    )
    actions = token.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a token for a person; it is printed once")
    create.add_argument("--person", required=True, metavar="WEB_ID_OR_ID", help="web-chat id (e.g. demo-centre-gesang) or person id")
    create.add_argument("--name", default="", help="what the token is for")
    create.add_argument("--scope", action="append", choices=api_tokens.SCOPES,
                        help="read (case API reads), act (actions), report (Open311 POST); repeat for several; default read")
    create.add_argument("--days", type=int, default=api_tokens.DEFAULT_DAYS,
                        help=f"days until the token expires (default {api_tokens.DEFAULT_DAYS})")
    revoke = actions.add_parser("revoke", help="revoke a token by id, or all tokens of a person")
    revoke.add_argument("token_id", nargs="?", type=int, metavar="TOKEN_ID")
    revoke.add_argument("--person", metavar="WEB_ID_OR_ID")
    listing = actions.add_parser("list", help="tokens (never their secrets)")
    listing.add_argument("--person", metavar="WEB_ID_OR_ID")
    token.set_defaults(func=cmd_token)


COMMANDS: list = [add_token_command]
