"""The case store: open cases and move them through the lifecycle.

Every change happens in the caller's transaction and, in that same transaction,
appends a case event (who, role, what, when) and enqueues the notifications it
causes. Functions take an `AsyncSession`; `CaseStore` wraps them in a transaction.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from . import access, deadlines, grids, lifecycle, quiet_hours
from .lifecycle import (
    BY_TRIGGER,
    RETURN_REASONS,
    CaseError,
    CaseNotFound,
    ConcurrentChange,
    MatterNotPublished,
    MissingInput,
    NotAllowedInState,
    NotPermitted,
    Refused,
    State,
    stage_of,
)
from .models import (
    AccessCodeAttempt,
    Attachment,
    Case,
    CaseFollower,
    CaseEvent,
    CaseMilestone,
    CaseNumberCounter,
    CaseSource,
    Department,
    Matter,
    Node,
    NodeLevel,
    Notification,
    Role,
    RoleAssignment,
)
from .db import writing
from .people import active_roles, people_with_role
from .timeutil import LOCAL_TZ, local, utcnow
from .workdays import TimeLimit, office_hours

MAX_DESCRIPTION = 2000
DESCRIPTION_LANGUAGES = ("zh", "bo", "mixed")  # mixed: a fair share of words in each (storage.words)
MAX_ATTACHMENTS = 10
REOPEN_DAYS = 7
RESUBMIT_DAYS = 7  # after a rejection for insufficient information, the missing part may be added this long
# The listed rejection reason "insufficient information", as stored (in the official language).
INSUFFICIENT_INFORMATION = "信息不足"
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
CASE_PREFIX = "LS"
DUPLICATE_METRES = 100  # a report this close to an open case of the same matter may be a repeat
DUPLICATE_DAYS = 30
CODE_TRIES_PER_PERSON = 5  # failed number + access code tries per person per hour
CODE_TRIES_PER_NUMBER = 10  # and per case number per hour, whoever tries


class LocationOutsideGrids(CaseError):
    code = "location_outside_grids"


class InvalidInput(CaseError):
    code = "invalid_input"


class TooManyTries(CaseError):
    code = "too_many_tries"


@dataclass
class Photo:
    """A photo or voice note as a case keeps it (see storage.media for storing the file)."""

    platform: str | None = None
    platform_file_id: str | None = None
    stored_path: str | None = None
    sha256: str | None = None
    size: int | None = None
    content_type: str | None = None
    kind: str = "photo"  # photo | voice
    duration_seconds: int | None = None
    public_path: str | None = None


def new_access_code() -> str:
    return f"{secrets.randbelow(10000):04d}"


async def next_case_number(session: AsyncSession, now: datetime) -> str:
    """LS-YYYYMMDD-NNNN, by the local (Asia/Shanghai) date; atomic on both databases."""
    day = local(now).strftime("%Y%m%d")
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(CaseNumberCounter)
        .values(day=day, last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": CaseNumberCounter.last + 1})
        .returning(CaseNumberCounter.last)
    )
    sequence = (await session.execute(statement)).scalar_one()
    return f"{CASE_PREFIX}-{day}-{sequence:04d}"


async def published_matter(session: AsyncSession, code: str) -> Matter:
    matter = await session.scalar(select(Matter).where(Matter.code == code))
    if matter is None or not matter.is_published:
        raise MatterNotPublished(f"matter {code!r} is not on the published list", matter=code)
    return matter


async def open_case(
    session: AsyncSession,
    *,
    reporter_id: int,
    matter_code: str,
    description: str,
    language: str,
    source: CaseSource = CaseSource.resident_report,
    grid_code: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    address: str | None = None,
    contact_phone: str | None = None,
    anonymous: bool = False,
    concerned_residents: str | None = None,
    photos: Iterable[Photo] = (),
    now: datetime | None = None,
) -> Case:
    """Report a case (上报). It waits in the township centre's queue."""
    now = now or utcnow()
    description = (description or "").strip()
    if not description:
        raise MissingInput("a case needs a description", missing=["description"])
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput("description too long", field="description", limit=MAX_DESCRIPTION)
    if language not in DESCRIPTION_LANGUAGES:
        raise InvalidInput("language must be zh, bo or mixed", field="language")
    photos = list(photos)
    if len(photos) > MAX_ATTACHMENTS:
        raise InvalidInput("too many photos", field="photos", limit=MAX_ATTACHMENTS)
    matter = await published_matter(session, matter_code)

    grid = None
    if grid_code is not None:
        grid = await session.scalar(select(Node).where(Node.code == grid_code, Node.level == NodeLevel.grid))
        if grid is None:
            raise InvalidInput(f"no grid {grid_code!r}", field="grid")
    elif latitude is not None and longitude is not None:
        grid = await grids.find_grid(session, latitude, longitude)
        if grid is None:
            raise LocationOutsideGrids("the location lies outside every grid", latitude=latitude, longitude=longitude)
    else:
        raise MissingInput("a case needs a grid or a location", missing=["location"])
    if source == CaseSource.worker_patrol and not any(
        a.role in lifecycle.GRID_WORKERS and a.node is not None and a.node.contains(grid)
        for a in await active_roles(session, reporter_id)
    ):
        raise NotPermitted("only a grid worker of this grid logs patrol cases here", action="report")
    centre = await grids.ancestor_at(session, grid, NodeLevel.township)
    if centre is None:
        raise InvalidInput(f"grid {grid.code} has no township above it", field="grid")

    case = Case(
        number=await next_case_number(session, now),
        source=source,
        state=State.reported,
        matter_id=matter.id,
        description=description,
        description_language=language,
        latitude=latitude,
        longitude=longitude,
        address=(address or "").strip() or None,
        grid_id=grid.id,
        reporter_id=reporter_id,
        anonymous=anonymous,
        contact_phone=None if anonymous else contact_phone,
        concerned_residents=concerned_residents,
        centre_node_id=centre.id,
        created_at=now,
        updated_at=now,
        access_code=new_access_code(),
    )
    case.matter, case.grid, case.centre_node, case.department, case.attachments = matter, grid, centre, None, []
    case.followers = []
    session.add(case)
    await session.flush()
    role = Role.grid_worker if source == CaseSource.worker_patrol else Role.resident
    event = await _record(session, case, reporter_id, role.value, "report", None, State.reported, None, {}, now)
    for photo in photos:
        case.attachments.append(Attachment(case_id=case.id, event_id=event.id, **photo.__dict__))
    accept_by = await deadlines.begin_stage(session, case, "accept", now)
    await _notify(session, case, event, reporter_id, ["centre", "grid_workers"], {"deadline": accept_by.isoformat()})
    await session.flush()
    return case


async def load_case(session: AsyncSession, ref: int | str, *, for_update: bool = False) -> Case:
    query = select(Case).where(Case.number == ref if isinstance(ref, str) else Case.id == ref)
    query = query.execution_options(populate_existing=True)
    if for_update and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(of=Case)
    case = await session.scalar(query)
    if case is None:
        raise CaseNotFound("no such case", ref=str(ref))
    return case


async def act(
    session: AsyncSession,
    ref: int | str,
    actor_id: int,
    trigger: str,
    *,
    now: datetime | None = None,
    photos: Iterable[Photo] = (),
    **inputs: Any,
) -> Case:
    """Fire a lifecycle trigger for a person; raise a CaseError and change nothing if refused."""
    now = now or utcnow()
    case = await load_case(session, ref, for_update=True)
    assignments = await active_roles(session, actor_id)
    role = access.acting_role(actor_id, assignments, case, trigger)
    if role is None:
        if not access.can_view(actor_id, assignments, case):
            raise CaseNotFound("no such case", ref=str(ref))  # never confirm a case exists
        raise NotPermitted(f"your role may not {trigger} this case", action=trigger)
    if case.state not in lifecycle.sources(trigger):
        raise NotAllowedInState(f"{trigger} is not allowed while the case is {case.state}", action=trigger, state=case.state)
    refused = lifecycle.refused_guard(trigger, case, now)
    if refused:
        raise Refused(refused, f"{trigger} is not possible now ({refused.replace('_', ' ')})", action=trigger)

    if trigger == "escalate":
        inputs["next_centre"] = await grids.next_centre(session, case.centre_node)
        if inputs["next_centre"] is None:
            raise NotAllowedInState("the case is already with the city centre", action=trigger, state=case.state)
    if trigger == "transfer" and inputs.get("department") is not None:
        inputs["department"] = await _department(session, inputs["department"])
    if trigger == "request_extension":
        inputs["deadline"] = requested_deadline(case, inputs, now)
    if trigger == "return_to_centre" and inputs.get("reason") not in (None, "", *RETURN_REASONS):
        raise InvalidInput("reason is one of " + ", ".join(RETURN_REASONS), field="reason")
    if trigger == "reopen" and not _may_reopen(case, now):
        raise NotAllowedInState(
            f"only an unsatisfied rating within {REOPEN_DAYS} days of closing reopens a case", action=trigger, state=case.state
        )
    if trigger == "rate" and inputs.get("rating") not in RATINGS:
        raise InvalidInput("rating must be one of " + ", ".join(RATINGS), field="rating")
    photos = list(photos)
    if trigger == "resubmit" and not may_resubmit(case, now):
        raise NotAllowedInState("only a case rejected for insufficient information takes additions, within "
                                f"{RESUBMIT_DAYS} days", action=trigger, state=case.state)
    if trigger in ("add_to_case", "resubmit"):
        if inputs.get("note") is not None and len(str(inputs["note"])) > MAX_DESCRIPTION:
            raise InvalidInput("addition too long", field="note", limit=MAX_DESCRIPTION)
        if len(photos) > MAX_ATTACHMENTS or len(case.attachments) + len(photos) > 5 * MAX_ATTACHMENTS:
            raise InvalidInput("too many photos", field="photos", limit=MAX_ATTACHMENTS)
        inputs["content"] = inputs.get("note") or ("+".join(sorted({p.kind for p in photos})) if photos else None)
    if trigger == "merge" and inputs.get("into") not in (None, ""):
        inputs["into"] = await _merge_target(session, case, inputs["into"])

    await _step(session, case, actor_id, role.value, trigger, inputs, now, photos)
    if trigger == "merge":
        await _carry_over(session, case, inputs["into"], actor_id, role.value, now)
    if trigger == "rate" and _may_reopen(case, now):
        # Unsatisfied within 7 days of closing reopens it; the reason is stored in the official
        # language, like other listed reasons, and readers see it translated.
        await _step(session, case, actor_id, role.value, "reopen", {"reason": inputs.get("comment") or "不满意"}, now, ())
    try:
        await session.flush()
    except StaleDataError as exc:
        raise ConcurrentChange("the case was changed by someone else; please look again", ref=str(ref)) from exc
    return case


async def system_step(session: AsyncSession, case: Case, trigger: str, now: datetime, **inputs: Any) -> CaseEvent:
    """A step of the supervision sweep (remind, urge, escalate_overdue …): no person, role `system`."""
    if trigger == "escalate_overdue":
        inputs["next_centre"] = await grids.next_centre(session, case.supervising_node or case.centre_node)
    return await _step(session, case, None, Role.system.value, trigger, inputs, now, ())


async def _step(session, case: Case, actor_id, role: str, trigger: str, inputs: dict, now: datetime, photos) -> CaseEvent:
    """One step in the caller's transaction: state, fields, stage clock, event, notifications.

    A system step is written at the caller's next flush (a sweep writes a whole batch at once)."""
    system = role == Role.system.value
    from_state = case.state
    to_state = lifecycle.fire(trigger, from_state, inputs)
    params = _apply(case, trigger, inputs, now)
    case.state = to_state
    if not system:
        case.updated_at = now  # milestones are in the timeline; they do not count as the case changing
    declared = BY_TRIGGER[trigger]
    if declared.get("starts"):
        deadline = await deadlines.begin_stage(session, case, declared["starts"], now, deadline=params.get("_deadline"))
        if deadline is not None:
            params.setdefault("deadline", deadline.isoformat())
    elif stage_of(to_state) != stage_of(from_state):
        await deadlines.drop_milestones(session, case)
    params.pop("_deadline", None)
    note = inputs.get("note") if trigger == "return_to_centre" else (
        inputs.get("reason") or inputs.get("result") or inputs.get("note") or inputs.get("comment")
        or inputs.get("public_text"))
    event = await _record(session, case, actor_id, role, trigger, from_state, to_state, note, params, now, flush=not system)
    for photo in photos:
        session.add(Attachment(case_id=case.id, event_id=event.id, **photo.__dict__))
    await _notify(session, case, event, actor_id, declared["notify"], params)
    return event


def requested_deadline(case: Case, inputs: dict[str, Any], now: datetime) -> datetime:
    """The new deadline an extension asks for: a date or time, or hours / working days more."""
    current = case.handling_deadline or now
    given = [name for name in ("deadline", "hours", "working_days") if inputs.get(name) not in (None, "")]
    if len(given) != 1:
        raise MissingInput("give the new deadline, or the hours or working days needed", missing=["deadline"])
    name, value = given[0], inputs[given[0]]
    if name == "hours":
        if not isinstance(value, int) or not 1 <= value <= 24 * 30:
            raise InvalidInput("an extension is between 1 hour and 30 days", field="hours", limit=24 * 30)
        new = current + timedelta(hours=value)
    elif name == "working_days":
        if not isinstance(value, int) or not 1 <= value <= 30:
            raise InvalidInput("an extension is between 1 and 30 working days", field="working_days", limit=30)
        new = TimeLimit(value, "working_days").due(current)
    else:
        new = _parse_deadline(value)
    if new <= now or new <= current:
        raise InvalidInput("the new deadline must be later than the current one", field="deadline")
    if new - current > deadlines.MAX_EXTENSION:
        raise InvalidInput("an extension is at most 60 days", field="deadline", limit=60)
    return new


def _parse_deadline(value: Any) -> datetime:
    """An aware datetime, an ISO time (Lhasa time when no offset), or a date (office closing time then)."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = datetime.fromisoformat(text).date()
                return datetime.combine(day, office_hours()[1], LOCAL_TZ).astimezone(timezone.utc)
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("deadline is a date (2026-12-24) or a time (2026-12-24T18:00+08:00)", field="deadline") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(timezone.utc)


def _apply(case: Case, trigger: str, inputs: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The effect of a step on the case's fields; returns the parameters its messages need
    (`_deadline`: the deadline the step sets for the stage it starts)."""
    params: dict[str, Any] = {}
    if trigger == "reject":
        case.rejection_reason = inputs["reason"]
        case.closed_at = now
        params["reason"] = inputs["reason"]
    elif trigger == "escalate":
        case.centre_node_id = inputs["next_centre"].id
        case.centre_node = inputs["next_centre"]
        params["centre"] = inputs["next_centre"].code
    elif trigger == "refer_to_joint_meeting":
        case.joint_meeting = True
        params["reason"] = inputs["reason"]
    elif trigger == "transfer":
        department: Department = inputs["department"]
        case.department_id = department.id
        case.department = department
        params["department"] = department.code
    elif trigger == "request_extension":
        case.pending_extension = {
            "deadline": inputs["deadline"].isoformat(), "reason": inputs["reason"], "requested_at": now.isoformat()
        }
        params.update(reason=inputs["reason"], deadline=inputs["deadline"].isoformat(),
                      previous_deadline=_iso(case.handling_deadline))
    elif trigger == "approve_extension":
        new = datetime.fromisoformat(case.pending_extension["deadline"])
        params.update(previous_deadline=_iso(case.handling_deadline), deadline=new.isoformat(), _deadline=new)
        case.pending_extension = None
        case.extension_count = (case.extension_count or 0) + 1
    elif trigger == "refuse_extension":
        params.update(reason=inputs["reason"], deadline=_iso(case.handling_deadline),
                      requested_deadline=case.pending_extension["deadline"])
        case.pending_extension = None
    elif trigger == "return_to_centre":
        params.update(department=case.department.code if case.department else None, reason=inputs["reason"],
                      note=inputs["note"])
        case.department_id, case.department = None, None
        case.handling_deadline, case.pending_extension = None, None
    elif trigger == "submit_result":
        case.result_text = inputs["result"]
        case.verification_outcome = None
        params["result"] = inputs["result"]
    elif trigger == "verify_pass":
        case.verification_outcome = "passed"
        case.closed_at = now
        params["result"] = case.result_text
    elif trigger == "verify_fail":
        case.verification_outcome = "failed"
        params["reason"] = inputs["reason"]
    elif trigger == "resolve_on_spot":
        case.result_text = inputs["result"]
        case.closed_at = now
        params["result"] = inputs["result"]
    elif trigger == "withdraw":
        case.closed_at = now
        if inputs.get("reason"):
            params["reason"] = inputs["reason"]
    elif trigger == "rate":
        case.satisfaction = inputs["rating"]
        case.satisfaction_comment = inputs.get("comment")
        params["rating"] = inputs["rating"]
    elif trigger == "reopen":
        case.closed_at = None
        case.satisfaction = None  # asked again when it closes next time; the rating stays in the events
        case.result_text = None
        case.verification_outcome = None
        params["reason"] = inputs["reason"]
    elif trigger in ("comment", "prompt", "relay_feedback", "reply_to_resident"):
        params["note"] = inputs["note"]
    elif trigger in ("add_to_case", "resubmit"):
        params["content"] = inputs["content"]
        if inputs.get("note"):
            params["note"] = inputs["note"]
        if trigger == "resubmit":
            case.rejection_reason = None
            case.closed_at = None
    elif trigger == "merge":
        target: Case = inputs["into"]
        case.merged_into_id = target.id
        case.closed_at = now
        params["into"] = target.number
    elif trigger == "publish":
        text = str(inputs["public_text"]).strip()
        if len(text) > MAX_DESCRIPTION:
            raise InvalidInput("public text too long", field="public_text", limit=MAX_DESCRIPTION)
        case.public_text = text
        case.published_at = now
    elif trigger in lifecycle.SYSTEM_TRIGGERS:
        stage = stage_of(case.state)
        params.update(stage=stage.name, deadline=_iso(getattr(case, stage.deadline_field)))
        if trigger == "escalate_overdue" and inputs.get("next_centre") is not None:
            case.supervising_node_id = inputs["next_centre"].id
            case.supervising_node = inputs["next_centre"]
            params["centre"] = inputs["next_centre"].code
    return params


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def _merge_target(session: AsyncSession, case: Case, ref: str | int) -> Case:
    """The case a repeat joins: open, of the same matter, not the case itself."""
    try:
        target = await load_case(session, ref.strip().upper() if isinstance(ref, str) else ref, for_update=True)
    except CaseNotFound:
        raise InvalidInput("no such case to merge into", field="into", reason="not_found") from None
    if target.id == case.id:
        raise InvalidInput("a case cannot be merged into itself", field="into", reason="same_case")
    if target.state not in lifecycle.OPEN_STATES:
        raise InvalidInput("the case to merge into is closed", field="into", reason="closed")
    if target.matter_id != case.matter_id:
        raise InvalidInput("the case to merge into is of another matter", field="into", reason="other_matter")
    return target


async def _carry_over(session: AsyncSession, case: Case, target: Case, actor_id: int, role: str, now: datetime) -> None:
    """After a merge: the repeat's reporter and followers follow the surviving case, whose timeline says so."""
    for person_id in [case.reporter_id, *[f.person_id for f in case.followers]]:
        await add_follower(session, target, person_id, "merged", now)
    await _record(session, target, actor_id, role, "merged_in", target.state, target.state, None,
                  {"case": case.number}, now)


async def rate(
    session: AsyncSession, ref: int | str, person_id: int, rating: str, comment: str | None = None, *, now=None
) -> Case:
    """The resident rates a closed case; unsatisfied within 7 days of closing reopens it (see `act`)."""
    return await act(session, ref, person_id, "rate", rating=rating, comment=comment, now=now)


def may_resubmit(case: Case, now: datetime) -> bool:
    """Rejected for insufficient information, recently: the resident may add what was missing."""
    return (
        case.state == State.rejected
        and case.rejection_reason == INSUFFICIENT_INFORMATION
        and case.closed_at is not None
        and now - case.closed_at <= timedelta(days=RESUBMIT_DAYS)
    )


def _may_reopen(case: Case, now: datetime) -> bool:
    return (
        case.satisfaction == "unsatisfied"
        and case.closed_at is not None
        and now - case.closed_at <= timedelta(days=REOPEN_DAYS)
    )


async def _department(session: AsyncSession, ref: Department | str | int) -> Department:
    if isinstance(ref, Department):
        return ref
    query = select(Department).where(Department.code == ref if isinstance(ref, str) else Department.id == ref)
    department = await session.scalar(query)
    if department is None:
        raise InvalidInput(f"no department {ref!r}", field="department")
    return department


async def _record(session, case, actor_id, role, action, from_state, to_state, note, data, now, *, flush=True) -> CaseEvent:
    event = CaseEvent(
        case_id=case.id,
        actor_id=actor_id,
        actor_role=role,
        action=action,
        from_state=from_state,
        to_state=to_state,
        note=note,
        data=data,
        created_at=now,
    )
    session.add(event)
    if flush:
        await session.flush()
    return event


async def _people(session: AsyncSession, role, **scope) -> list[int]:
    """`people_with_role`, remembered for the transaction when the caller asked (a sweep's batch)."""
    cache = session.info.get("audience_cache")
    if cache is None:
        return await people_with_role(session, role, **scope)
    key = (role, tuple(sorted(scope.items())))
    if key not in cache:
        cache[key] = await people_with_role(session, role, **scope)
    return cache[key]


async def _audience(session: AsyncSession, case: Case, audience: str) -> list[int]:
    if audience == "reporter":  # and those who follow the case
        return [case.reporter_id, *await follower_ids(session, case.id)]
    if audience == "holders":
        if case.department_id is not None and case.state in (State.transferred, State.in_progress):
            return await _people(session, Role.department_handler, department_id=case.department_id)
        return await _people(session, Role.centre_staff, node_id=case.centre_node_id)
    if audience == "holder":
        stage = stage_of(case.state)
        return await _audience(session, case, stage.holder) if stage is not None else []
    if audience == "grid_chief":
        return await _people(session, Role.grid_chief, node_id=case.grid_id)
    if audience == "supervisor":
        if case.supervising_node_id is None:
            return []
        return await _people(session, Role.centre_staff, node_id=case.supervising_node_id)
    if audience == "grid_workers":
        return await _people(session, lifecycle.GRID_WORKERS, node_id=case.grid_id)
    if audience == "overseers":
        return await _people(session, lifecycle.OVERSEERS, node_id=case.grid_id)
    if audience == "centre":
        return await _people(session, Role.centre_staff, node_id=case.centre_node_id)
    if audience == "department":
        if case.department_id is None:
            return []
        return await _people(session, Role.department_handler, department_id=case.department_id)
    raise ValueError(f"unknown audience {audience}")


async def _notify(session, case: Case, event: CaseEvent, actor_id: int, audiences: list[str], params: dict) -> None:
    told: set[int] = {actor_id}
    for audience in audiences:
        for person_id in await _audience(session, case, audience):
            if person_id in told:
                continue
            told.add(person_id)
            # Residents are not woken at night for news that can wait; staff alarms always go out.
            resident = audience == "reporter" or (audience == "holder" and stage_of(case.state).holder == "reporter")
            deliver_at = quiet_hours.deliver_after(event.created_at) if resident and not case.matter.urgent else event.created_at
            session.add(
                Notification(
                    case_id=case.id,
                    event=event,
                    recipient_id=person_id,
                    message_key=f"{event.action}.{audience}",
                    params={"number": case.number, "matter": case.matter.code, **params},
                    created_at=event.created_at,
                    next_attempt_at=deliver_at,
                )
            )


async def case_for_person(session: AsyncSession, person_id: int, number: str) -> Case:
    """A case by number if the person may see it; 'not found' otherwise (no leak)."""
    case = await load_case(session, number.strip().upper())
    if not access.can_view(person_id, await active_roles(session, person_id), case):
        raise CaseNotFound("no such case", ref=number)
    return case


async def follower_ids(session: AsyncSession, case_id: int) -> list[int]:
    rows = await session.scalars(select(CaseFollower.person_id).where(CaseFollower.case_id == case_id).order_by(CaseFollower.id))
    return list(rows)


async def add_follower(session: AsyncSession, case: Case, person_id: int, reason: str, now: datetime | None = None) -> bool:
    """Make the person a follower (told what the reporter is told); False when they already were, or reported it."""
    if person_id == case.reporter_id:
        return False
    known = await session.scalar(
        select(CaseFollower.id).where(CaseFollower.case_id == case.id, CaseFollower.person_id == person_id)
    )
    if known is not None:
        return False
    follower = CaseFollower(case_id=case.id, person_id=person_id, reason=reason, created_at=now or utcnow())
    session.add(follower)
    await session.flush()
    await session.refresh(case, ["followers"])
    return True


async def follow_with_code(session: AsyncSession, person_id: int, number: str, code: str, *,
                           now: datetime | None = None) -> Case | None:
    """Number + access code: the person follows the case. A wrong code and a missing case give the same
    None (the failed try is recorded, so keep it in the transaction); after too many failed tries, per
    person or per number, TooManyTries before anything is looked at."""
    now = now or utcnow()
    number = number.strip().upper()
    since = now - timedelta(hours=1)
    by_person = await session.scalar(select(func.count()).select_from(AccessCodeAttempt).where(
        AccessCodeAttempt.person_id == person_id, AccessCodeAttempt.at >= since))
    by_number = await session.scalar(select(func.count()).select_from(AccessCodeAttempt).where(
        AccessCodeAttempt.number == number, AccessCodeAttempt.at >= since))
    if by_person >= CODE_TRIES_PER_PERSON or by_number >= CODE_TRIES_PER_NUMBER:
        raise TooManyTries("too many tries; wait an hour", ref=number)
    case = await session.scalar(select(Case).where(Case.number == number))
    if case is None or not case.access_code or not secrets.compare_digest(case.access_code, code.strip()):
        session.add(AccessCodeAttempt(person_id=person_id, number=number[:24], at=now))
        await session.flush()
        return None
    await add_follower(session, case, person_id, "access_code", now)
    return case


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((phi2 - phi1) / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


async def nearby_open_cases(session: AsyncSession, matter_code: str, latitude: float, longitude: float, *,
                            now: datetime | None = None, metres: float = DUPLICATE_METRES, days: int = DUPLICATE_DAYS,
                            limit: int = 3) -> list[tuple[Case, float]]:
    """Open cases of the same matter within `metres`, reported in the last `days`: maybe the same problem."""
    now = now or utcnow()
    dlat = metres / 111_320
    dlon = metres / (111_320 * max(math.cos(math.radians(latitude)), 0.01))
    rows = await session.scalars(
        select(Case).join(Matter, Matter.id == Case.matter_id).where(
            Matter.code == matter_code,
            Case.state.in_(lifecycle.OPEN_STATES),
            Case.created_at >= now - timedelta(days=days),
            Case.latitude.between(latitude - dlat, latitude + dlat),
            Case.longitude.between(longitude - dlon, longitude + dlon),
        ).limit(50)
    )
    found = [(c, _metres(latitude, longitude, c.latitude, c.longitude)) for c in rows]
    return sorted([(c, d) for c, d in found if d <= metres], key=lambda pair: pair[1])[:limit]


async def cases_followed_by(session: AsyncSession, person_id: int, limit: int = 10) -> list[Case]:
    """Cases the person follows (supporter, merged repeat, access code), newest first."""
    rows = await session.scalars(
        select(Case).join(CaseFollower, CaseFollower.case_id == Case.id).where(CaseFollower.person_id == person_id)
        .order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)
    )
    return list(rows)


async def open_cases_of(session: AsyncSession, person_id: int, limit: int = 5) -> list[Case]:
    """The person's own open cases, newest first (what an addition may go to)."""
    rows = await session.scalars(
        select(Case).where(Case.reporter_id == person_id, Case.state.in_(lifecycle.OPEN_STATES))
        .order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)
    )
    return list(rows)


async def cases_reported_by(session: AsyncSession, person_id: int, limit: int = 20, offset: int = 0) -> list[Case]:
    rows = await session.scalars(
        select(Case)
        .where(Case.reporter_id == person_id)
        .order_by(Case.created_at.desc(), Case.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


async def timeline(session: AsyncSession, case_id: int) -> list[CaseEvent]:
    rows = await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))
    return list(rows)


async def queue_for(session: AsyncSession, person_id: int, limit: int = 50) -> list[Case]:
    """Cases waiting for this person's action, in any of their staff roles, oldest first."""
    assignments: list[RoleAssignment] = await active_roles(session, person_id)
    found: dict[int, Case] = {}
    for assignment in assignments:
        query = select(Case).order_by(Case.created_at).limit(limit)
        if assignment.role == Role.centre_staff and assignment.node is not None:
            query = query.join(Node, Node.id == Case.centre_node_id).where(
                Node.path.startswith(assignment.node.path, autoescape=True), Case.state.in_([State.reported, State.accepted, State.joint_meeting])
            )
            # Overdue cases the next level now supervises (the department keeps them).
            supervised = (
                select(Case).order_by(Case.created_at).limit(limit)
                .join(Node, Node.id == Case.supervising_node_id)
                .where(Node.path.startswith(assignment.node.path, autoescape=True), Case.state.in_(lifecycle.OPEN_STATES))
            )
            for case in await session.scalars(supervised):
                found.setdefault(case.id, case)
        elif assignment.role == Role.department_handler:
            query = query.where(
                Case.department_id == assignment.department_id, Case.state.in_([State.transferred, State.in_progress])
            )
        elif assignment.role in access.GRID_ROLES and assignment.node is not None:
            query = query.join(Node, Node.id == Case.grid_id).where(
                Node.path.startswith(assignment.node.path, autoescape=True), Case.state.in_(lifecycle.OPEN_STATES)
            )
        else:
            continue
        for case in await session.scalars(query):
            found.setdefault(case.id, case)
    return sorted(found.values(), key=lambda c: c.created_at)[:limit]


class CaseStore:
    """The store's operations, each in its own transaction."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker

    async def open_case(self, **kwargs) -> Case:
        async with self.sessionmaker.begin() as session:
            await writing(session)
            return await open_case(session, **kwargs)

    async def act(self, ref: int | str, actor_id: int, trigger: str, **inputs) -> Case:
        async with self.sessionmaker.begin() as session:
            await writing(session)
            return await act(session, ref, actor_id, trigger, **inputs)

    async def rate(self, ref: int | str, person_id: int, rating: str, comment: str | None = None, **kw) -> Case:
        async with self.sessionmaker.begin() as session:
            await writing(session)
            return await rate(session, ref, person_id, rating, comment, **kw)

    async def case_for_person(self, person_id: int, number: str) -> Case:
        async with self.sessionmaker() as session:
            return await case_for_person(session, person_id, number)

    async def timeline(self, case_id: int) -> list[CaseEvent]:
        async with self.sessionmaker() as session:
            return await timeline(session, case_id)
