"""Retention and erasure (PIPL: keep personal data no longer than needed).

- `anonymise_expired`: a case closed longer ago than the retention period loses the reporter's
  phone, its photos and voice notes (original files and EXIF-free copies), who follows it, its exact
  location (rounded to about 100 m) and its free text (description, address, names, results,
  reasons, comments, and the notes of its timeline and outbox); the case,
  its matter, grid, states, times, ratings and timeline steps stay, so indicators stay right.
  Run once a day by one instance (`claim_daily`); each case is done once (it is marked). Failed
  access-code tries older than a day are dropped too.
- `erase_person`: a request to delete: refused while the person has an open case; otherwise their
  cases are anonymised, their account details, identities, dialogs, messages, the cases they follow
  and their access-code tries removed, and their
  phone numbers replaced in every text column of the database.

Case events are otherwise immutable: only these functions rewrite their note and data, with
Core UPDATE statements (the ORM guard on CaseEvent stays for every other change).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Enum, String, Text, and_, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .lifecycle import OPEN_STATES
from .models import (
    AccessCodeAttempt,
    ApiToken,
    Attachment,
    Base,
    Case,
    CaseEvent,
    CaseFollower,
    DialogState,
    Identity,
    Notification,
    PeriodicRun,
    Person,
    ProcessedUpdate,
    RoleAssignment,
    WebInboxMessage,
)
from .reading import COORDINATE_DECIMALS, PLAIN_DATA_KEYS
from .timeutil import utcnow

log = logging.getLogger("gridbot.retention")

DEFAULT_RETENTION_DAYS = 365
REPLIES_KEPT = timedelta(days=2)  # a redelivered update needs its answer for a day at most
DRAFTS_KEPT = timedelta(days=2)  # an unfinished report is offered again for 24 hours
SEEN_INBOX_KEPT = timedelta(days=30)
CODE_TRIES_KEPT = timedelta(days=1)  # failed access-code tries only count for an hour
NOTIFICATION_KEYS = frozenset({"number", "matter"}) | PLAIN_DATA_KEYS
ERASED = "[erased]"
BATCH = 200


class ErasureRefused(Exception):
    """The person still has open cases; nothing was erased."""

    def __init__(self, numbers: list[str]):
        super().__init__("open cases: " + ", ".join(numbers))
        self.numbers = numbers


@dataclass
class Removed:
    """What was removed, for the command's answer and the job's log."""

    cases: int = 0
    photos: int = 0
    files: int = 0
    events: int = 0
    notifications: int = 0
    identities: int = 0
    messages: int = 0
    replies: int = 0
    drafts: int = 0
    texts: int = 0
    numbers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "numbers"}


def _plain(data: dict | None, keep: frozenset[str]) -> dict:
    return {k: v for k, v in (data or {}).items() if k in keep}


def _file_of(attachment: Attachment, attachments_dir: str | None, stored: str | None = None) -> Path | None:
    stored = attachment.stored_path if stored is None else stored
    if not stored:
        return None
    path = Path(stored)
    if not path.is_absolute() and attachments_dir and not path.exists():
        path = Path(attachments_dir) / path
    return path


async def anonymise_case(session: AsyncSession, case: Case, removed: Removed, *, now: datetime,
                         attachments_dir: str | None = None) -> None:
    """Remove the personal data of one case (see the module's docstring); idempotent."""
    case.contact_phone = None
    case.description = ""
    case.address = None
    case.concerned_residents = None
    case.result_text = None
    case.rejection_reason = None
    case.satisfaction_comment = None
    case.public_text = None
    if case.latitude is not None and case.longitude is not None:
        case.latitude = round(case.latitude, COORDINATE_DECIMALS)
        case.longitude = round(case.longitude, COORDINATE_DECIMALS)
    case.anonymised_at = now
    for attachment in list(case.attachments):
        # The original and, for photos, the copy without EXIF shown to residents (storage.media).
        for column in (Attachment.stored_path, Attachment.public_path):
            stored = getattr(attachment, column.key)
            path = _file_of(attachment, attachments_dir, stored or "")
            shared = await session.scalar(
                select(func.count(Attachment.id)).where(Attachment.id != attachment.id, column == stored)
            ) if path is not None else 0
            if path is not None and not shared:
                try:
                    os.remove(path)
                    removed.files += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("photo file of case %s not removed: %s", case.number, type(exc).__name__)
        await session.delete(attachment)
        removed.photos += 1
    # Immutable history: rewritten here only, without loading the rows as ORM objects.
    events = (await session.execute(
        select(CaseEvent.id, CaseEvent.data).where(CaseEvent.case_id == case.id)
    )).all()
    for event_id, data in events:
        await session.execute(
            update(CaseEvent).where(CaseEvent.id == event_id).values(note=None, data=_plain(data, PLAIN_DATA_KEYS))
            .execution_options(synchronize_session=False)
        )
    removed.events += len(events)
    notifications = (await session.execute(
        select(Notification.id, Notification.params).where(Notification.case_id == case.id)
    )).all()
    for notification_id, params in notifications:
        await session.execute(
            update(Notification).where(Notification.id == notification_id)
            .values(params=_plain(params, NOTIFICATION_KEYS), last_error=None)
            .execution_options(synchronize_session=False)
        )
    removed.notifications += len(notifications)
    # Who followed the case (access code, supporters, merged repeats) is personal too.
    await session.execute(delete(CaseFollower).where(CaseFollower.case_id == case.id)
                          .execution_options(synchronize_session=False))
    removed.cases += 1
    removed.numbers.append(case.number)


def expired_condition(now: datetime, retention_days: int):
    cutoff = now - timedelta(days=retention_days)
    return and_(
        Case.anonymised_at.is_(None),
        Case.state.not_in(OPEN_STATES),
        or_(Case.closed_at < cutoff, and_(Case.closed_at.is_(None), Case.updated_at < cutoff)),
    )


async def anonymise_expired(session: AsyncSession, *, now: datetime | None = None,
                            retention_days: int = DEFAULT_RETENTION_DAYS, attachments_dir: str | None = None,
                            batch: int = BATCH) -> Removed:
    """One batch of the daily job: cases past retention, old stored answers, old seen web messages."""
    now = now or utcnow()
    removed = Removed()
    query = select(Case).where(expired_condition(now, retention_days)).order_by(Case.id).limit(batch)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(of=Case, skip_locked=True)  # another instance takes other cases
    for case in list(await session.scalars(query)):
        await anonymise_case(session, case, removed, now=now, attachments_dir=attachments_dir)
    result = await session.execute(
        update(ProcessedUpdate).where(ProcessedUpdate.processed_at < now - REPLIES_KEPT,
                                      ProcessedUpdate.replies.is_not(None), ProcessedUpdate.platform != "open311")
        .values(replies=None).execution_options(synchronize_session=False)
    )
    removed.replies += result.rowcount or 0
    result = await session.execute(
        delete(WebInboxMessage).where(WebInboxMessage.seen_at < now - SEEN_INBOX_KEPT)
        .execution_options(synchronize_session=False)
    )
    removed.messages += result.rowcount or 0
    # Drafts are dropped lazily at the person's next message; someone who never comes back keeps none.
    result = await session.execute(
        update(DialogState).where(DialogState.draft_saved_at < now - DRAFTS_KEPT)
        .values(draft=None, draft_saved_at=None).execution_options(synchronize_session=False)
    )
    removed.drafts += result.rowcount or 0
    await session.execute(delete(AccessCodeAttempt).where(AccessCodeAttempt.at < now - CODE_TRIES_KEPT)
                          .execution_options(synchronize_session=False))
    await session.flush()
    return removed


async def claim_daily(session: AsyncSession, name: str, now: datetime | None = None,
                      every: timedelta = timedelta(days=1)) -> bool:
    """Claim today's run of a periodic job: True for exactly one instance per period."""
    now = now or utcnow()
    query = select(PeriodicRun).where(PeriodicRun.name == name)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    run = await session.scalar(query)
    if run is None:
        dialect_insert = _insert(session)
        statement = dialect_insert(PeriodicRun).values(name=name, started_at=now).on_conflict_do_nothing()
        return bool((await session.execute(statement)).rowcount)
    if now - run.started_at < every - timedelta(minutes=10):
        return False
    run.started_at, run.finished_at = now, None
    await session.flush()
    return True


def _insert(session: AsyncSession):
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


async def finish_daily(session: AsyncSession, name: str, summary: dict[str, Any], now: datetime | None = None) -> None:
    run = await session.get(PeriodicRun, name)
    if run is not None:
        run.finished_at, run.summary = now or utcnow(), summary


# ---------------------------------------------------------------- erasure on request


async def erase_person(session: AsyncSession, person_id: int, *, now: datetime | None = None,
                       attachments_dir: str | None = None) -> Removed:
    """Erase a person's personal data on their request; refused (ErasureRefused) while a case of theirs is open."""
    now = now or utcnow()
    person = await session.get_one(Person, person_id)
    open_numbers = list(await session.scalars(
        select(Case.number).where(Case.reporter_id == person_id, Case.state.in_(OPEN_STATES)).order_by(Case.id)
    ))
    if open_numbers:
        raise ErasureRefused(open_numbers)
    removed = Removed()
    own = list(await session.scalars(select(Case).where(Case.reporter_id == person_id).order_by(Case.id)))
    phones = {p for p in [person.phone] + [c.contact_phone for c in own] if p}
    for case in own:
        await anonymise_case(session, case, removed, now=now, attachments_dir=attachments_dir)
    person.display_name = None
    person.phone = None
    person.home_grid_id = None
    person.erased_at = now
    removed.identities = (await session.execute(
        delete(Identity).where(Identity.person_id == person_id).execution_options(synchronize_session=False)
    )).rowcount or 0
    await session.execute(delete(DialogState).where(DialogState.person_id == person_id)
                          .execution_options(synchronize_session=False))
    # The cases they follow and their access-code tries (issue 13).
    await session.execute(delete(CaseFollower).where(CaseFollower.person_id == person_id)
                          .execution_options(synchronize_session=False))
    await session.execute(delete(AccessCodeAttempt).where(AccessCodeAttempt.person_id == person_id)
                          .execution_options(synchronize_session=False))
    removed.messages += (await session.execute(
        delete(WebInboxMessage).where(WebInboxMessage.person_id == person_id).execution_options(synchronize_session=False)
    )).rowcount or 0
    removed.notifications += (await session.execute(
        delete(Notification).where(Notification.recipient_id == person_id).execution_options(synchronize_session=False)
    )).rowcount or 0
    await session.execute(update(ApiToken).where(ApiToken.person_id == person_id, ApiToken.revoked_at.is_(None))
                          .values(revoked_at=now).execution_options(synchronize_session=False))
    await session.execute(update(RoleAssignment).where(RoleAssignment.person_id == person_id,
                                                       RoleAssignment.revoked_at.is_(None))
                          .values(revoked_at=now).execution_options(synchronize_session=False))
    await session.flush()
    for phone in sorted({v for p in phones for v in spellings(p)}, key=len, reverse=True):
        removed.texts += await scrub_everywhere(session, phone)
    return removed


_TIBETAN_DIGITS = str.maketrans("0123456789", "༠༡༢༣༤༥༦༧༨༩")


def spellings(phone: str) -> set[str]:
    """The ways a stored phone number may have been typed elsewhere: grouped, with +86, in Tibetan digits."""
    digits = "".join(c for c in phone if c.isdigit())
    found = {phone.strip(), digits}
    if len(digits) == 11:
        for sep in (" ", "-"):
            found.add(sep.join((digits[:3], digits[3:7], digits[7:])))
        found.add("+86" + digits)
    found |= {s.translate(_TIBETAN_DIGITS) for s in list(found)}
    return {s for s in found if s}


def _text_columns():
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if (isinstance(column.type, (String, Text, JSON)) and not isinstance(column.type, Enum)
                    and not column.primary_key and not column.foreign_keys):
                yield table, column


async def scrub_everywhere(session: AsyncSession, needle: str) -> int:
    """Replace `needle` in every text and JSON column of every table; returns the number of values changed."""
    if len(needle) < 5:
        return 0
    postgres = session.bind.dialect.name == "postgresql"
    changed = 0
    for table, column in _text_columns():
        is_json = isinstance(column.type, JSON)
        # JSON is stored with non-ASCII characters escaped (Tibetan digits as \u0f21…).
        for form in ({needle, json.dumps(needle)[1:-1]} if is_json else {needle}):
            pattern = "%" + form.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            as_text = cast(column, Text) if is_json else column
            replaced = func.replace(as_text, form, ERASED)
            value = cast(replaced, JSON) if is_json and postgres else replaced
            if isinstance(column.type, String) and column.type.length and not is_json:
                value = func.substr(value, 1, column.type.length)
            result = await session.execute(
                update(table).where(as_text.like(pattern, escape="\\")).values({column.name: value})
                .execution_options(synchronize_session=False)
            )
            changed += result.rowcount or 0
    return changed
