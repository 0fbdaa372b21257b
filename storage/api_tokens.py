"""Per-account tokens for the case API and Open311 (`api_key`): only a SHA-256 hash is stored.

A token acts for its owner, with exactly the owner's roles at the time of each call, and
only within its scopes: `read` (the case API's reads), `act` (lifecycle actions),
`report` (Open311 POST). Revoking a role narrows what the token can do at once; a token
ends when revoked or when it expires (90 days unless given otherwise).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import ApiToken, Identity, Person
from .timeutil import utcnow

PREFIX = "gbt_"  # recognisable in logs and by secret scanners
MAX_TOKEN_LENGTH = 200
TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is refreshed at most this often
SCOPES = ("read", "act", "report")
DEFAULT_DAYS = 90
MAX_DAYS = 366


class TokenError(Exception):
    """A token command could not be carried out (unknown person, unknown token)."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


async def find_person(session: AsyncSession, ref: str | int) -> Person:
    """A person by web-chat id (as in demo.yaml's web_id), or by numeric person id."""
    text = str(ref).strip()
    identity = await session.scalar(select(Identity).where(Identity.platform == "web", Identity.external_id == text))
    if identity is not None:
        return await session.get_one(Person, identity.person_id)
    if text.isdecimal():
        person = await session.get(Person, int(text))
        if person is not None:
            return person
    raise TokenError(f"no person with web id or id {text!r}")


def check_scopes(scopes) -> list[str]:
    chosen = sorted(set(scopes), key=SCOPES.index) if all(s in SCOPES for s in scopes) else None
    if not chosen:
        raise TokenError("scopes are one or more of " + ", ".join(SCOPES))
    return chosen


async def create_token(
    session: AsyncSession,
    person_id: int,
    name: str = "",
    *,
    scopes=SCOPES,
    days: int = DEFAULT_DAYS,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A new token for the person; returns the row and the secret, which is never stored."""
    if not 1 <= days <= MAX_DAYS:
        raise TokenError(f"a token lives between 1 and {MAX_DAYS} days")
    now = now or utcnow()
    secret = new_secret()
    token = ApiToken(person_id=person_id, token_hash=hash_token(secret), name=(name or "").strip()[:100], created_at=now,
                     scopes=check_scopes(list(scopes)), expires_at=now + timedelta(days=days))
    session.add(token)
    await session.flush()
    return token, secret


async def authenticate(session: AsyncSession, secret: str | None, now: datetime | None = None) -> ApiToken | None:
    """The live token with this secret, or None (unknown, malformed, revoked or expired)."""
    if not secret or len(secret) > MAX_TOKEN_LENGTH:
        return None
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None or expired(token, now):
        return None
    return token


def expired(token: ApiToken, now: datetime | None = None) -> bool:
    return token.expires_at is not None and (now or utcnow()) >= token.expires_at


def has_scope(token: ApiToken, scope: str) -> bool:
    return scope in (token.scopes or [])


def needs_touch(token: ApiToken, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY


async def touch(session: AsyncSession, token_id: int, now: datetime | None = None) -> None:
    """Record that the token was used (in the caller's write transaction)."""
    token = await session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = now or utcnow()
        await session.flush()


async def revoke(session: AsyncSession, *, token_id: int | None = None, person_id: int | None = None) -> int:
    """Revoke one token by id, or every live token of a person; returns how many were revoked."""
    if (token_id is None) == (person_id is None):
        raise ValueError("give either token_id or person_id")
    query = select(ApiToken).where(ApiToken.revoked_at.is_(None))
    query = query.where(ApiToken.id == token_id) if token_id is not None else query.where(ApiToken.person_id == person_id)
    now, count = utcnow(), 0
    for token in await session.scalars(query):
        token.revoked_at = now
        count += 1
    if token_id is not None and count == 0:
        existing = await session.get(ApiToken, token_id)
        if existing is None:
            raise TokenError(f"no token with id {token_id}")
    await session.flush()
    return count


async def list_tokens(session: AsyncSession, person_id: int | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if person_id is not None:
        query = query.where(ApiToken.person_id == person_id)
    return list(await session.scalars(query))
