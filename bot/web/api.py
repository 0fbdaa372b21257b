"""The case API (JSON under /api/) for grid centres, departments and the city platform.

Every call but /api/openapi.json carries `Authorization: Bearer <token>` (see
`gridbot token create`) and is scoped by the token owner's roles exactly as in the
chat: storage.access decides what a person sees and may do, storage.queries lists
the same scope, storage.cases.act performs actions (guards, events, outbox).
Errors are `{"error": {"code": ..., "message": ...}}` with stable codes; the
document at /api/openapi.json (from openapi.yaml beside this file) describes it all.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from storage import access, api_tokens, audit, cases, deadlines, queries
from storage.db import writing
from storage.lifecycle import (
    BY_TRIGGER,
    CaseError,
    CaseNotFound,
    ConcurrentChange,
    MissingInput,
    NotAllowedInState,
    NotPermitted,
    Refused,
)
from storage.models import Case, CaseEvent, CaseSource, CaseView, Matter, Node, NodeLevel, Person, Role, RoleAssignment
from storage.people import active_roles
from storage.reading import CaseReading, Reader, reading_for
from storage.timeutil import local, utcnow

from .media import LINKS
from .security import OUTAGE, RETRY_AFTER_OUTAGE, RateLimiter, unstorable_input

log = logging.getLogger("gridbot.api")

PREFIX = "/api/"
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
MAX_TEXT = cases.MAX_DESCRIPTION
MAX_BODY = 64 * 1024
MAX_INTEGER = 1_000_000_000  # integers in query strings and inputs (offsets, hours)

# Inputs a client may send with an action, and their types. `next_centre` is never taken from
# the client: the store finds the centre one level up.
INPUT_TYPES: dict[str, type] = {
    "reason": str, "result": str, "department": str, "hours": int, "working_days": int, "deadline": str,
    "rating": str, "comment": str, "note": str, "public_text": str, "into": str,
}
SERVER_INPUTS = {"next_centre", "content"}

# Domain errors (storage.lifecycle, storage.cases) → HTTP status and API code.
DOMAIN_ERRORS: list[tuple[type[CaseError], int, str]] = [
    (CaseNotFound, 404, "not_found"),
    (NotPermitted, 403, "forbidden"),
    (NotAllowedInState, 409, "not_allowed_in_state"),
    (Refused, 409, None),  # its own code: deadline_passed, too_many_extensions, no_extension_pending …
    (ConcurrentChange, 409, "concurrent_change"),
    (MissingInput, 422, "missing_input"),
]
HTTP_CODES = {
    400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 415: "unsupported_media_type", 429: "too_many_requests",
}

# Details a client may act on; others (such as the number asked for) are not echoed.
DETAIL_KEYS = ("field", "missing", "limit", "action", "state")

_dumps = partial(json.dumps, ensure_ascii=False)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def error_response(status: int, code: str, message: str, details: dict | None = None, headers=None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        shown = {k: v for k, v in details.items() if k in DETAIL_KEYS}
        if shown:
            body["details"] = shown
    return json_response({"error": body}, status=status, headers=headers)


def domain_error(exc: CaseError) -> tuple[int, str]:
    for cls, status, code in DOMAIN_ERRORS:
        if isinstance(exc, cls):
            return status, code or exc.code
    return 422, exc.code  # invalid_input, matter_not_published, location_outside_grids, …


@web.middleware
async def api_errors(request: web.Request, handler):
    """JSON errors with stable codes for everything under /api/; no caching of case data."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        response = await handler(request)
        OUTAGE.ok()
    except ApiError as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="gridbot"'} if exc.status == 401 else {}
        if "retry_after" in exc.details:
            headers["Retry-After"] = str(exc.details["retry_after"])
        response = error_response(exc.status, exc.code, exc.message, exc.details, headers)
    except CaseError as exc:
        status, code = domain_error(exc)
        response = error_response(status, code, str(exc), exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        response = error_response(exc.status, HTTP_CODES.get(exc.status, "http_error"), exc.reason, headers=headers)
    except Exception as exc:
        if unstorable_input(exc):
            response = error_response(400, "invalid_input", "a value in the request cannot be used "
                                                            "(control character or out of range)")
        elif OUTAGE.failed(exc):
            response = error_response(503, "unavailable", "the database is briefly unreachable; try again",
                                      headers={"Retry-After": str(RETRY_AFTER_OUTAGE)})
        else:
            log.exception("case API: %s %s failed", request.method, request.path)
            response = error_response(500, "internal_error", "something went wrong on our side")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# ---------------------------------------------------------------- representation


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with the offset, in Lhasa time: 2026-11-25T16:05:00+08:00."""
    return local(moment).isoformat(timespec="seconds") if moment is not None else None


def names(thing) -> dict[str, str] | None:
    if thing is None:
        return None
    return {"code": thing.code, "name_zh": thing.name_zh, "name_bo": thing.name_bo}


def case_summary(case: Case, person_id: int, reading: CaseReading) -> dict[str, Any]:
    """What a list row shows: no reporter, no location; the description as the reading rule allows."""
    description = reading.description()
    return {
        "number": case.number,
        "state": case.state,
        "source": case.source.value,
        "matter": names(case.matter),
        "grid": names(case.grid),
        "centre": {**names(case.centre_node), "level": case.centre_node.level.value},
        "department": names(case.department),
        "description": description,
        "description_withheld": description is None,
        "description_language": case.description_language,
        "anonymous": case.anonymous,
        "reported_by_you": case.reporter_id == person_id,
        "joint_meeting": case.joint_meeting,
        "deadline": deadline_view(case),
        "accept_deadline": iso(case.accept_deadline),
        "handling_deadline": iso(case.handling_deadline),
        "verification_deadline": iso(case.verification_deadline),
        "rating_deadline": iso(case.rating_deadline),
        "extension_count": case.extension_count or 0,
        "supervising_centre": names(case.supervising_node),
        "created_at": iso(case.created_at),
        "updated_at": iso(case.updated_at),
        "closed_at": iso(case.closed_at),
    }


def deadline_view(case: Case) -> dict[str, Any] | None:
    """The current stage's time limit: {stage, due, overdue}, or None when the stage has none."""
    current = deadlines.deadline_of(case)
    if current is None:
        return None
    return {"stage": current[0], "due": iso(current[1]), "overdue": deadlines.is_overdue(case, utcnow())}


def event_view(event: CaseEvent, person_id: int, reading: CaseReading) -> dict[str, Any] | None:
    """One line of the timeline: the role that acted, never the person's name; notes as the rule allows."""
    seen = reading.event(event)
    if not seen.shown:
        return None
    return {
        "at": iso(event.created_at),
        "actor_role": event.actor_role,
        "by_you": event.actor_id == person_id,
        "action": event.action,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "note": seen.note,
        "data": seen.data,
    }


def action_inputs(trigger: str) -> tuple[list[str], list[str]]:
    """(needed, optional) inputs of an action, as a client sends them."""
    declared = BY_TRIGGER[trigger]
    needs = [n for n in declared.get("needs", []) if n not in SERVER_INPUTS]
    optional = [n for n in declared.get("optional", []) if n not in needs]
    if trigger == "request_extension":  # the new deadline, or how much more time: one of the three
        needs.remove("deadline")
        optional = ["deadline", *optional]
    if "note" not in needs and "note" not in optional:
        optional.append("note")
    return needs, optional


def actions_view(person_id: int, assignments: list[RoleAssignment], case: Case) -> list[dict[str, Any]]:
    result = []
    for trigger in access.allowed_actions(person_id, assignments, case):
        needs, optional = action_inputs(trigger)
        role = access.acting_role(person_id, assignments, case, trigger)
        result.append({"action": trigger, "role": role.value if role else None, "needs": needs, "optional": optional})
    return result


def reporter_view(case: Case, reading: CaseReading, name: str | None) -> dict[str, Any] | None:
    """The reporter's contact: never for an anonymous report; phone and name as the reading rule allows."""
    if case.anonymous and not reading.readers & {Reader.reporter}:
        return None
    phone, masked = reading.phone()
    view: dict[str, Any] = {"phone": phone, "phone_masked": masked}
    shown_name = reading.reporter_name(name)
    if shown_name:
        view["name"] = shown_name
    return view


def attachment_view(attachment, media_url: str | None) -> dict[str, Any]:
    return {"kind": attachment.kind or "photo", "content_type": attachment.content_type, "size": attachment.size,
            "duration_seconds": attachment.duration_seconds, "created_at": iso(attachment.created_at),
            "media_url": media_url}


def case_detail(case: Case, events: list[CaseEvent], person_id: int, assignments: list[RoleAssignment],
                reporter_name: str | None = None, media_urls: dict[int, str] | None = None) -> dict[str, Any]:
    reading = reading_for(person_id, assignments, case)
    latitude, longitude = reading.location()
    timeline = [e for e in (event_view(e, person_id, reading) for e in events) if e is not None]
    media_urls = media_urls or {}
    return {
        **case_summary(case, person_id, reading),
        "location": {"latitude": latitude, "longitude": longitude, "address": reading.address()},
        "reporter": reporter_view(case, reading, reporter_name),
        "concerned_residents": reading.concerned_residents(),
        "result": reading.result(),
        "rejection_reason": reading.rejection_reason(),
        "verification_outcome": case.verification_outcome,
        "satisfaction": case.satisfaction,
        "satisfaction_comment": reading.satisfaction_comment(),
        "public_text": case.public_text,
        "published_at": iso(case.published_at),
        "attachments": [attachment_view(a, media_urls.get(a.id)) for a in reading.photos()],
        "timeline": timeline,
        "allowed_actions": actions_view(person_id, assignments, case),
        "audit_readable": audit.may_read_audit(reading.readers),
    }


def viewing_role(person_id: int, assignments: list[RoleAssignment], case: Case) -> str:
    """The role in which the person reads the case, for the CaseView record."""
    for assignment in assignments:
        if access.covers(assignment, case):
            return assignment.role.value
        if assignment.role == Role.centre_staff and assignment.node is not None and assignment.node.contains(case.grid):
            return assignment.role.value
    return Role.resident.value


async def reporter_name(session, case: Case) -> str | None:
    return None if case.anonymous else await session.scalar(select(Person.display_name).where(Person.id == case.reporter_id))


def matter_view(matter: Matter) -> dict[str, Any]:
    return {
        "code": matter.code,
        "name_zh": matter.name_zh,
        "name_bo": matter.name_bo,
        "description_zh": matter.description_zh,
        "description_bo": matter.description_bo,
        "work_kind": matter.work_kind,
        "department": names(matter.department),
        "time_limit_hours": matter.time_limit_hours,
        "time_limit_working_days": matter.time_limit_working_days,
        "accept_within_hours": matter.accept_within_hours,
        "accept_within_working_hours": matter.accept_within_working_hours,
        "urgent": matter.urgent,
        "needs_onsite_verification": matter.needs_onsite_verification,
        "keywords_zh": list(matter.keywords_zh or []),
        "keywords_bo": list(matter.keywords_bo or []),
        "published_at": iso(matter.published_at),
    }


# ---------------------------------------------------------------- request parsing


def query_params(request: web.Request, allowed: set[str]) -> dict[str, list[str]]:
    """Query parameters as lists (repeated or comma-separated); unknown names are refused."""
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise ApiError(422, "invalid_input", f"unknown parameter {unknown[0]!r}; accepted: {', '.join(sorted(allowed))}",
                       field=unknown[0])
    result: dict[str, list[str]] = {}
    for name in request.query:
        values = [v.strip() for raw in request.query.getall(name) for v in raw.split(",") if v.strip()]
        if values:
            result[name] = values
    return result


def one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(422, "invalid_input", f"{name} takes one value", field=name)
    return values[0]


def integer(params: dict[str, list[str]], name: str, default: int) -> int:
    value = one(params, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(422, "invalid_input", f"{name} must be an integer", field=name) from None
    if abs(number) > MAX_INTEGER:  # the database's integers are 64-bit, and no list is that long
        raise ApiError(422, "invalid_input", f"{name} must be at most {MAX_INTEGER}", field=name)
    return number


def boolean(params: dict[str, list[str]], name: str) -> bool:
    value = (one(params, name) or "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ApiError(422, "invalid_input", f"{name} must be true or false", field=name)
    return value in ("true", "1", "yes")


async def action_body(request: web.Request, trigger: str) -> dict[str, Any]:
    """The action's inputs from a JSON object body (an empty body is no inputs)."""
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"the body may hold at most {MAX_BODY} bytes")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"the body may hold at most {MAX_BODY} bytes")
    if not raw.strip():
        body: Any = {}
    else:
        if request.content_type not in ("application/json", "application/octet-stream", ""):
            raise ApiError(415, "unsupported_media_type", "send the inputs as a JSON object (Content-Type: application/json)")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # RecursionError: nested too deeply
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_input", "the body must be a JSON object")
    needs, optional = action_inputs(trigger)
    accepted = needs + optional
    inputs: dict[str, Any] = {}
    for name, value in body.items():
        if name not in accepted:
            raise ApiError(422, "invalid_input", f"{trigger} takes {', '.join(accepted)}; not {name!r}", field=name)
        if value is None:
            continue
        if INPUT_TYPES[name] is int:
            if isinstance(value, str) and value.strip().isdecimal():
                value = int(value.strip())
            if not isinstance(value, int) or isinstance(value, bool):
                raise ApiError(422, "invalid_input", f"{name} must be an integer", field=name)
            if abs(value) > MAX_INTEGER:
                raise ApiError(422, "invalid_input", f"{name} must be at most {MAX_INTEGER}", field=name)
        else:
            if not isinstance(value, str):
                raise ApiError(422, "invalid_input", f"{name} must be a string", field=name)
            value = value.strip()
            if len(value) > MAX_TEXT:
                raise ApiError(422, "invalid_input", f"{name} may hold at most {MAX_TEXT} characters", field=name)
        inputs[name] = value
    return inputs


# ---------------------------------------------------------------- the handlers


@dataclass
class Caller:
    person_id: int
    token_id: int


@dataclass
class ApiLimits:
    """Calls per token (per process): a burst, then a steady pace."""

    burst: int = 120
    per_second: float = 4.0


class CaseApi:
    def __init__(self, runtime, limits: ApiLimits | None = None):
        self.runtime = runtime
        limits = limits or ApiLimits()
        self.limiter = RateLimiter(limits.burst, limits.per_second)

    @property
    def sessionmaker(self):
        return self.runtime.sessionmaker

    async def caller(self, request: web.Request, scope: str = "read") -> Caller:
        scheme, _, secret = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "unauthorized", "send a token: Authorization: Bearer <token> (gridbot token create)")
        async with self.sessionmaker() as session:
            token = await api_tokens.authenticate(session, secret.strip())
            if token is None:
                raise ApiError(401, "unauthorized", "the token is unknown, expired or revoked")
            if not api_tokens.has_scope(token, scope):
                raise ApiError(403, "insufficient_scope", f"this token lacks the {scope!r} scope (gridbot token create --scope {scope})")
            caller = Caller(token.person_id, token.id)
            touch = api_tokens.needs_touch(token)
        wait = self.limiter.take(f"token:{caller.token_id}")
        if wait:
            raise ApiError(429, "too_many_requests", "too many calls with this token; slow down",
                           retry_after=max(1, math.ceil(wait)))
        if touch:
            async with self.sessionmaker.begin() as session:
                await writing(session)
                await api_tokens.touch(session, caller.token_id)
        return caller

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(text=openapi_json(), content_type="application/json", charset="utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    async def me(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        async with self.sessionmaker() as session:
            person = await session.get_one(Person, caller.person_id)
            roles = await active_roles(session, caller.person_id)
            return json_response({
                "person_id": person.id,
                "language": person.language,
                "roles": [
                    {"role": a.role.value, "node": names(a.node), "department": names(a.department)} for a in roles
                ],
            })

    async def list_cases(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        params = query_params(request, {"state", "matter", "grid", "department", "source", "created_from", "created_to",
                                        "limit", "offset"})
        sources = params.get("source")
        if sources and any(s not in CaseSource.__members__ for s in sources):
            raise ApiError(422, "invalid_input", "source is resident_report or worker_patrol", field="source")
        created_from, created_to = one(params, "created_from"), one(params, "created_to")
        filters = queries.CaseFilter(
            states=params.get("state"),
            matter_codes=params.get("matter"),
            node_code=one(params, "grid"),
            department_code=one(params, "department"),
            sources=[CaseSource(s) for s in sources] if sources else None,
            created_from=queries.parse_time(created_from, field="created_from") if created_from else None,
            created_before=queries.parse_time(created_to, field="created_to", end=True) if created_to else None,
        )
        limit, offset = integer(params, "limit", queries.DEFAULT_LIMIT), integer(params, "offset", 0)
        async with self.sessionmaker.begin() as session:
            await writing(session)
            assignments = await active_roles(session, caller.person_id)
            found, total = await queries.cases_in_scope(
                session, caller.person_id, assignments, filters, limit=limit, offset=offset
            )
            rows = []
            for case in found:
                rows.append(case_summary(case, caller.person_id, reading_for(caller.person_id, assignments, case)))
                role = viewing_role(caller.person_id, assignments, case)
                if role != Role.resident.value:  # a staff read of the case's description: recorded (Art. 19)
                    session.add(CaseView(case_id=case.id, person_id=caller.person_id, role=role, channel="api_list"))
        return json_response({"cases": rows, "total": total, "limit": limit, "offset": offset})

    async def get_case(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        query_params(request, set())
        await request.app[LINKS].secret()  # read before the write transaction below (one writer on SQLite)
        async with self.sessionmaker.begin() as session:
            await writing(session)
            case = await cases.case_for_person(session, caller.person_id, request.match_info["number"])
            assignments = await active_roles(session, caller.person_id)
            role = viewing_role(caller.person_id, assignments, case)
            media_urls = await self.media_urls(request, case) if role != Role.resident.value else {}
            detail = case_detail(case, await cases.timeline(session, case.id), caller.person_id, assignments,
                                 await reporter_name(session, case), media_urls)
            session.add(CaseView(case_id=case.id, person_id=caller.person_id, role=role, channel="api"))
        return json_response(detail)

    async def media_urls(self, request: web.Request, case: Case) -> dict[int, str]:
        """Signed, short-lived links to the case's stored files, for staff readers."""
        links = request.app[LINKS]
        base = (self.runtime.settings.public_url or f"{request.scheme}://{request.host}").rstrip("/")
        return {a.id: base + await links.link(a.id) for a in case.attachments if a.stored_path}

    async def case_actions(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        query_params(request, set())
        async with self.sessionmaker() as session:
            case = await cases.case_for_person(session, caller.person_id, request.match_info["number"])
            assignments = await active_roles(session, caller.person_id)
            return json_response({"number": case.number, "state": case.state,
                                  "actions": actions_view(caller.person_id, assignments, case)})

    async def audit_trail(self, request: web.Request) -> web.Response:
        """Who viewed and who changed the case: for grid chiefs and grid centre staff of its area."""
        caller = await self.caller(request)
        query_params(request, set())
        async with self.sessionmaker() as session:
            case = await cases.case_for_person(session, caller.person_id, request.match_info["number"])
            assignments = await active_roles(session, caller.person_id)
            if not audit.may_read_audit(reading_for(caller.person_id, assignments, case).readers):
                raise ApiError(403, "forbidden", "the audit trail is for the grid chief and the grid centre of the area")
            entries = await audit.case_trail(session, case)
        return json_response({
            "number": case.number,
            "entries": [{"at": iso(e.at), "kind": e.kind, "person_id": e.person_id, "name": e.name, "role": e.role,
                         "channel" if e.kind == "view" else "action": e.what} for e in entries],
        })

    async def act(self, request: web.Request) -> web.Response:
        caller = await self.caller(request, "act")
        trigger = request.match_info["trigger"]
        if trigger not in BY_TRIGGER:
            raise ApiError(404, "not_found", f"no action {trigger!r}; actions are " + ", ".join(BY_TRIGGER))
        inputs = await action_body(request, trigger)
        number = request.match_info["number"].strip().upper()
        async with self.sessionmaker.begin() as session:
            await writing(session)
            case = await cases.act(session, number, caller.person_id, trigger, **inputs)
            assignments = await active_roles(session, caller.person_id)
            events = await cases.timeline(session, case.id)
            detail = case_detail(case, events, caller.person_id, assignments, await reporter_name(session, case))
            session.add(CaseView(case_id=case.id, person_id=caller.person_id,
                                 role=viewing_role(caller.person_id, assignments, case), channel="api"))
        last = event_view(events[-1], caller.person_id, reading_for(caller.person_id, assignments, case))
        return json_response({"case": detail, "event": last})

    async def matters(self, request: web.Request) -> web.Response:
        await self.caller(request)
        query_params(request, set())
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(Matter).where(Matter.withdrawn_at.is_(None)).options(selectinload(Matter.department)).order_by(Matter.code)
            )
            return json_response({"matters": [matter_view(m) for m in rows]})

    async def grids(self, request: web.Request) -> web.Response:
        await self.caller(request)
        params = query_params(request, {"level", "under", "boundary"})
        level, under, with_boundary = one(params, "level"), one(params, "under"), boolean(params, "boundary")
        if level is not None and level not in NodeLevel.__members__:
            raise ApiError(422, "invalid_input", "level is one of " + ", ".join(NodeLevel.__members__), field="level")
        async with self.sessionmaker() as session:
            nodes = list(await session.scalars(select(Node).order_by(Node.path)))
        codes = {n.id: n.code for n in nodes}
        if under is not None:
            top = next((n for n in nodes if n.code == under), None)
            if top is None:
                raise ApiError(422, "invalid_input", f"unknown grid or area {under!r}", field="under")
            nodes = [n for n in nodes if top.contains(n)]
        if level is not None:
            nodes = [n for n in nodes if n.level.value == level]
        else:
            nodes = [n for n in nodes if n.level != NodeLevel.household_unit]
        result = []
        for node in nodes:
            item = {
                "code": node.code,
                "level": node.level.value,
                "kind": node.kind.value if node.kind else None,
                "parent": codes.get(node.parent_id),
                "name_zh": node.name_zh,
                "name_bo": node.name_bo,
                "area_zh": node.area_zh,
                "area_bo": node.area_bo,
                "supervision_phone": node.supervision_phone,
            }
            if with_boundary:
                item["boundary"] = node.boundary
            result.append(item)
        return json_response({"grids": result})


@lru_cache(maxsize=1)
def openapi_json() -> str:
    """The OpenAPI 3.1 description of this API (openapi.yaml beside this file), as JSON text."""
    return _dumps(yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8")))


def openapi_document() -> dict[str, Any]:
    return json.loads(openapi_json())


CASE_API = web.AppKey("case_api", CaseApi)


def setup(app: web.Application, runtime, limits: ApiLimits | None = None) -> None:
    """Add the case API's routes and its error middleware to the app."""
    api = app[CASE_API] = CaseApi(runtime, limits)
    app.middlewares.append(api_errors)
    app.router.add_get("/api/openapi.json", api.openapi)
    app.router.add_get("/api/me", api.me)
    app.router.add_get("/api/cases", api.list_cases)
    app.router.add_get("/api/cases/{number}", api.get_case)
    app.router.add_get("/api/cases/{number}/actions", api.case_actions)
    app.router.add_get("/api/cases/{number}/audit", api.audit_trail)
    app.router.add_post("/api/cases/{number}/actions/{trigger}", api.act)
    app.router.add_get("/api/matters", api.matters)
    app.router.add_get("/api/grids", api.grids)
