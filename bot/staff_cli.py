"""`gridbot invite create` and `gridbot staff revoke`: staff never self-declare a role."""

from __future__ import annotations

import asyncio

from storage.db import run_in_transaction
from storage.models import Role
from storage.staff import create_invitation, find_person, revoke_staff
from storage.timeutil import local


_in_transaction = run_in_transaction


def cmd_invite(args) -> int:
    async def work(session):
        return await create_invitation(
            session, Role(args.role), node_code=args.grid or args.node, department_code=args.department
        )

    try:
        code, invitation = asyncio.run(_in_transaction(work))
    except ValueError as exc:
        print(f"cannot create the invitation: {exc}")
        return 2
    print(f"invitation code: {code}")
    print(f"role: {invitation.role.value}; valid until {local(invitation.expires_at):%Y-%m-%d %H:%M} (Asia/Shanghai)")
    print(f"the person sends:  /join {code}")
    return 0


def cmd_revoke(args) -> int:
    async def work(session):
        person = await find_person(session, args.person)
        if person is None:
            return None
        return await revoke_staff(session, person.id)

    count = asyncio.run(_in_transaction(work))
    if count is None:
        print(f"no such person: {args.person}")
        return 2
    print(f"revoked {count} role(s); effective at the person's next message")
    return 0


def add_invite(sub) -> None:
    invite = sub.add_parser("invite", help="one-time invitation codes for staff (valid 7 days)")
    invite.add_argument("action", choices=["create"])
    invite.add_argument("--role", required=True, choices=[r.value for r in Role if r not in (Role.resident, Role.system)])
    invite.add_argument("--grid", help="grid code (grid workers, chiefs)")
    invite.add_argument("--node", help="code of a township, district or city (grid centre staff, instructors)")
    invite.add_argument("--department", help="department code (department handlers)")
    invite.set_defaults(func=cmd_invite)


def add_staff(sub) -> None:
    staff = sub.add_parser("staff", help="staff accounts")
    staff.add_argument("action", choices=["revoke"])
    staff.add_argument("--person", required=True, help="person id, web:ID, telegram:ID, or a web-chat id")
    staff.set_defaults(func=cmd_revoke)


COMMANDS = [add_invite, add_staff]
