"""`gridbot person erase`, `gridbot retention run` and `gridbot audit export` (Art. 19, PIPL).

    gridbot person erase --person ID         # refused while the person has an open case
    gridbot retention run                     # what the daily job does, now
    gridbot audit export --since 2026-11-01 [--output FILE]
"""

from __future__ import annotations

import asyncio
import sys

from storage import audit, queries, retention
from storage.cases import InvalidInput
from storage.db import run_in_transaction
from storage.staff import find_person


def _settings():
    from bot.settings import Settings

    return Settings()


def cmd_person_erase(args) -> int:
    settings = _settings()

    async def work(session):
        person = await find_person(session, args.person)
        if person is None:
            return None
        return await retention.erase_person(session, person.id, attachments_dir=settings.attachments_dir)

    try:
        removed = asyncio.run(run_in_transaction(work))
    except retention.ErasureRefused as refused:
        print(f"not erased: the person still has open cases ({', '.join(refused.numbers)}); "
              "erase once they are closed", file=sys.stderr)
        return 3
    if removed is None:
        print(f"no such person: {args.person}", file=sys.stderr)
        return 2
    print(f"erased person {args.person}: name, phone and home grid; {removed.identities} chat account(s); "
          f"{removed.messages} stored message(s); {removed.notifications} notification(s); tokens and roles revoked")
    cases = ", ".join(removed.numbers) or "none"
    print(f"anonymised {removed.cases} case(s) ({cases}): phone, description, address, exact location, "
          f"{removed.photos} photo(s) ({removed.files} file(s)), notes of {removed.events} step(s)")
    print(f"their phone number was replaced in {removed.texts} other stored text(s)")
    return 0


def cmd_retention_run(args) -> int:
    settings = _settings()

    async def work(session):
        return await retention.anonymise_expired(session, retention_days=settings.retention_days,
                                                 attachments_dir=settings.attachments_dir, batch=100_000)

    removed = asyncio.run(run_in_transaction(work))
    print(f"retention ({settings.retention_days} days after closing): anonymised {removed.cases} case(s), "
          f"{removed.photos} photo(s); cleared {removed.replies} stored answer(s), {removed.messages} old web message(s)")
    return 0


def cmd_audit_export(args) -> int:
    try:
        since = queries.parse_time(args.since, field="since")
    except InvalidInput:
        print("--since must be a date or date-time, e.g. 2026-11-01", file=sys.stderr)
        return 2

    async def work(session):
        if args.output in (None, "-"):
            return await audit.export_csv(session, since, sys.stdout)
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            return await audit.export_csv(session, since, out)

    count = asyncio.run(run_in_transaction(work))
    print(f"{count} audit row(s) since {args.since}", file=sys.stderr)
    return 0


def add_person(sub) -> None:
    person = sub.add_parser("person", help="a person's personal data")
    actions = person.add_subparsers(dest="action", required=True)
    erase = actions.add_parser("erase", help="erase a person's personal data on their request")
    erase.add_argument("--person", required=True, help="person id, web:ID, telegram:ID, or a web-chat id")
    erase.set_defaults(func=cmd_person_erase)


def add_retention(sub) -> None:
    job = sub.add_parser("retention", help="anonymise cases closed longer ago than GRIDBOT_RETENTION_DAYS")
    job.add_argument("action", choices=["run"])
    job.set_defaults(func=cmd_retention_run)


def add_audit(sub) -> None:
    trail = sub.add_parser("audit", help="who viewed and who changed cases")
    actions = trail.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write views and changes as CSV")
    export.add_argument("--since", required=True, help="a date (Lhasa time) or ISO date-time")
    export.add_argument("--output", help="a file (standard output by default)")
    export.set_defaults(func=cmd_audit_export)


COMMANDS = [add_person, add_retention, add_audit]
