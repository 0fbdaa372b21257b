"""One-time sign-in links to the grid-centre console, and the sessions they open (no passwords).

A member of staff sends /console in the chat and gets a link valid for LINK_LIFETIME, usable once;
opening it starts a console session of SESSION_LIFETIME. Only SHA-256 hashes are stored. A session
acts with the person's roles at each request, so revoking a role takes effect at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ConsoleLogin, Role
from .people import active_roles
from .timeutil import utcnow

LINK_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(hours=12)
CONSOLE_ROLES = [r for r in Role if r not in (Role.resident, Role.administrator)]
MAX_SECRET = 200


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def csrf_token(session_secret: str) -> str:
    """What the console page sends back with every change (derived from the session; never stored)."""
    return hashlib.sha256(("csrf:" + session_secret).encode("utf-8")).hexdigest()


async def is_staff(session: AsyncSession, person_id: int) -> bool:
    return any(a.role in CONSOLE_ROLES for a in await active_roles(session, person_id))


async def create_link(session: AsyncSession, person_id: int, now: datetime | None = None) -> str:
    """A new one-time link secret for a member of staff."""
    now = now or utcnow()
    secret = secrets.token_urlsafe(32)
    session.add(ConsoleLogin(person_id=person_id, link_hash=_hash(secret), link_expires_at=now + LINK_LIFETIME,
                             created_at=now))
    await session.flush()
    return secret


async def redeem(session: AsyncSession, link_secret: str, now: datetime | None = None) -> str | None:
    """Use the link once: returns a new session secret, or None (unknown, used or expired link)."""
    now = now or utcnow()
    if not link_secret or len(link_secret) > MAX_SECRET:
        return None
    session_secret = secrets.token_urlsafe(32)
    # One UPDATE that only an unused, unexpired link matches: two tabs racing get one session.
    result = await session.execute(
        update(ConsoleLogin)
        .where(ConsoleLogin.link_hash == _hash(link_secret), ConsoleLogin.used_at.is_(None),
               ConsoleLogin.link_expires_at > now)
        .values(used_at=now, session_hash=_hash(session_secret), session_expires_at=now + SESSION_LIFETIME)
    )
    return session_secret if result.rowcount == 1 else None


async def authenticate(session: AsyncSession, session_secret: str | None, now: datetime | None = None) -> int | None:
    """The person of a live console session who is still staff, or None."""
    now = now or utcnow()
    if not session_secret or len(session_secret) > MAX_SECRET:
        return None
    login = await session.scalar(select(ConsoleLogin).where(ConsoleLogin.session_hash == _hash(session_secret)))
    if login is None or login.session_expires_at is None or login.session_expires_at <= now:
        return None
    return login.person_id if await is_staff(session, login.person_id) else None


async def sign_out(session: AsyncSession, session_secret: str, now: datetime | None = None) -> None:
    await session.execute(update(ConsoleLogin).where(ConsoleLogin.session_hash == _hash(session_secret))
                          .values(session_expires_at=now or utcnow()))
