"""Open311 GeoReport v2 at /open311/v2/, so that civic-tech clients can read and submit reports.

- services.{json,xml}: the published matter list; service_code = matter code,
  service_name in Chinese (Tibetan with `lang=bo` or `locale=bo`), group = the
  Art. 21 kind of work, keywords from the matter's keywords.
- services/{code}.{json,xml}: a service definition (no attributes).
- requests.{json,xml}: GET with service_request_id, service_code, start_date,
  end_date, status; POST (form-encoded, with `api_key`: a token from
  `gridbot token create`) opens a case through storage.cases.open_case.
- requests/{id}.{json,xml}: one request; service_request_id = case number.
- /open311/discovery.{json,xml}: service discovery.

Our states map to open/closed (closed = closed, rejected, withdrawn or merged: a merged
repeat lives on in its surviving case). Public reads go through the
reading rule (storage.reading, reader "public"): service, status, dates, the grid's name and
a location rounded to about 100 m; the description only as the grid centre's published
wording (the `publish` action), never for matters about particular people; notes written
for the public (results, rejection reasons) with phones, ID numbers and e-mail addresses
masked. Never who reported, their phone, name or e-mail (Art. 19). Cross-origin reads are
allowed only for the origins in GRIDBOT_CORS_ORIGINS. `api_key` is taken from the POST body
only, never from the URL (URLs end up in logs).
"""

from __future__ import annotations

import json
import logging
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from aiohttp import web
from sqlalchemy import select, text

from storage import api_tokens, cases, queries, words
from storage.db import writing
from storage.locks import lock_id
from storage.reading import NOTE_KINDS, PUBLIC, Level, mask_personal_data, public_reading
from storage import lifecycle
from storage.lifecycle import OPEN_STATES, CaseError, MatterNotPublished, State
from storage.models import ApiToken, Case, CaseEvent, CaseSource, Department, Matter, Node, NodeLevel, ProcessedUpdate
from storage.timeutil import utcnow

from .api import iso
from .security import OUTAGE, RETRY_AFTER_OUTAGE, RateLimiter, client_address, public_base, unstorable_input

log = logging.getLogger("gridbot.open311")

PREFIX = "/open311/"
BASE = "/open311/v2"
FMT = "{fmt:json|xml}"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-25T00:00:00+08:00"  # when the services or this endpoint last changed shape

CLOSED_STATES = tuple(lifecycle.CLOSED_STATES)  # a merged repeat lives on in its surviving case
PUBLIC_NOTE_ACTIONS = tuple(a for a, kind in NOTE_KINDS.items() if kind == PUBLIC and a != "publish")
MAX_RESULTS = 1000
WINDOW = timedelta(days=90)
MAX_PHONE = 40

_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_dumps = partial(json.dumps, ensure_ascii=False)


class Open311Error(Exception):
    def __init__(self, status: int, description: str, *, retry_after: int | None = None):
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


# ---------------------------------------------------------------- formats


def _xml_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _ILLEGAL_XML.sub("", str(value))


def _fill(element: ET.Element, data: dict[str, Any]) -> None:
    for key, value in data.items():
        child = ET.SubElement(element, key)
        if isinstance(value, dict):
            _fill(child, value)
        elif isinstance(value, list):
            for item in value:
                grandchild = ET.SubElement(child, key[:-1])  # attributes/attribute, formats/format, …
                if isinstance(item, dict):
                    _fill(grandchild, item)
                else:
                    grandchild.text = _xml_text(item)
        else:
            child.text = _xml_text(value)


def xml_document(root: str, item: str | None, data: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    element = ET.Element(root)
    if isinstance(data, dict):
        _fill(element, data)
    else:
        for row in data:
            _fill(ET.SubElement(element, item), row)
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="unicode")).encode("utf-8")


def respond(fmt: str, root: str, item: str | None, data, status: int = 200) -> web.Response:
    headers: dict[str, str] = {}
    if fmt == "xml":
        return web.Response(body=xml_document(root, item, data), status=status, content_type="text/xml",
                            charset="utf-8", headers=headers)
    return web.Response(text=_dumps(data), status=status, content_type="application/json", charset="utf-8",
                        headers=headers)


def error_response(fmt: str, status: int, description: str) -> web.Response:
    return respond(fmt, "errors", "error", [{"code": status, "description": description}], status=status)


def _format_of(request: web.Request) -> str:
    fmt = request.match_info.get("fmt")
    if fmt:
        return fmt
    return "json" if request.path.endswith(".json") else "xml"  # XML is the standard's own format


@web.middleware
async def open311_errors(request: web.Request, handler):
    """Errors in the standard's list format (XML or JSON by the URL's extension), with its status codes."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    response = await _answer(request, handler)
    origin = request.headers.get("Origin")
    if origin and origin in request.app[OPEN311].cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    return response


async def _answer(request: web.Request, handler) -> web.StreamResponse:
    fmt = _format_of(request)
    try:
        return await handler(request)
    except Open311Error as exc:
        response = error_response(fmt, exc.status, exc.description)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except MatterNotPublished as exc:
        return error_response(fmt, 404, f"{exc.code}: {exc}")
    except CaseError as exc:
        return error_response(fmt, 400, f"{exc.code}: {exc}")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status if exc.status in (403, 404, 405, 413, 429) else 400
        response = error_response(fmt, status, exc.reason)
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Exception as exc:
        if unstorable_input(exc):
            return error_response(fmt, 400, "a value in the request cannot be used (control character or out of range)")
        if OUTAGE.failed(exc):
            response = error_response(fmt, 503, "the database is briefly unreachable; try again")
            response.headers["Retry-After"] = str(RETRY_AFTER_OUTAGE)
            return response
        log.exception("Open311: %s %s failed", request.method, request.path)
        return error_response(fmt, 500, "internal error")


# ---------------------------------------------------------------- mapping


def language_of(request: web.Request) -> str:
    wanted = (request.query.get("lang") or request.query.get("locale") or "zh").strip().lower()
    return "bo" if wanted.startswith("bo") else "zh"


def service_view(matter: Matter, language: str) -> dict[str, Any]:
    if language == "bo":
        name, description, other, keywords = matter.name_bo, matter.description_bo, matter.name_zh, matter.keywords_bo
    else:
        name, description, other, keywords = matter.name_zh, matter.description_zh, matter.name_bo, matter.keywords_zh
    return {
        "service_code": matter.code,
        "service_name": name,
        "description": f"{description} / {other}" if description else other,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(keywords or []),
        "group": matter.work_kind,
    }


def status_of(case: Case) -> str:
    return "closed" if case.state in CLOSED_STATES else "open"


class Context:
    """What request views need beyond the case rows: departments, place names, latest public notes."""

    def __init__(self, departments: dict[int, Department], places: dict[str, Node], notes: dict[int, str | None]):
        self.departments, self.places, self.notes = departments, places, notes

    @classmethod
    async def load(cls, session, found: list[Case]) -> Context:
        departments = {d.id: d for d in await session.scalars(select(Department))}
        codes = {c for case in found for c in case.grid.path.split("/") if c}
        places = {n.code: n for n in await session.scalars(select(Node).where(Node.code.in_(codes)))} if codes else {}
        notes: dict[int, str | None] = {}
        if found:
            events = await session.scalars(
                select(CaseEvent)
                .where(CaseEvent.case_id.in_([c.id for c in found]), CaseEvent.action.in_(PUBLIC_NOTE_ACTIONS))
                .order_by(CaseEvent.id)
            )
            for event in events:
                notes[event.case_id] = event.note
        return cls(departments, places, notes)

    def place(self, case: Case, language: str) -> str:
        """The case's grid and the areas above it, most specific first, as the standard asks."""
        codes = [c for c in case.grid.path.split("/") if c]
        nodes = [self.places[c] for c in reversed(codes) if c in self.places]
        return ", ".join(n.name(language) for n in nodes if n.level != NodeLevel.household_unit)

    def status_notes(self, case: Case) -> str | None:
        """The latest note written for the public, as the reading rule lets the public read it."""
        reading = public_reading(case)
        if case.state == State.rejected:
            return reading.rejection_reason()
        if case.state == State.closed and case.result_text:
            return reading.result()
        note = self.notes.get(case.id)
        return mask_personal_data(note) if note and reading.level("note_public") >= Level.masked else None


def request_view(case: Case, context: Context, language: str) -> dict[str, Any]:
    """One service request as the public reads it (storage.reading): never the reporter or what they typed."""
    reading = public_reading(case)
    status = status_of(case)
    department = context.departments.get(case.department_id or case.matter.department_id)
    latitude, longitude = reading.location()
    return {
        "service_request_id": case.number,
        "status": status,
        "status_notes": context.status_notes(case),
        "service_name": case.matter.name(language),
        "service_code": case.matter.code,
        "description": reading.description(),
        "agency_responsible": department.name(language) if department else None,
        "service_notice": None,
        "requested_datetime": iso(case.created_at),
        "updated_datetime": iso(case.closed_at if status == "closed" and case.closed_at else case.updated_at),
        "expected_datetime": iso(case.handling_deadline) if status == "open" else None,
        "address": context.place(case, language) or None,  # the grid and the areas above it
        "address_id": case.grid.code,
        "zipcode": None,
        "lat": latitude,
        "long": longitude,
        "media_url": None,
    }


# ---------------------------------------------------------------- handlers


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _float(value: str, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise Open311Error(400, f"{name} must be between {low:g} and {high:g}")
    return number


def _time(value: str, name: str, *, end: bool = False):
    try:
        return queries.parse_time(value, field=name, end=end)
    except cases.InvalidInput:
        raise Open311Error(400, f"{name} must be a w3 date-time, e.g. 2026-11-25T00:00:00+08:00") from None


@dataclass
class Open311Limits:
    """Per process: reads per client address, new requests per api_key."""

    read_burst: int = 60
    reads_per_second: float = 2.0
    post_burst: int = 60
    posts_per_second: float = 1.0


class Open311:
    def __init__(self, runtime, limits: Open311Limits | None = None):
        self.runtime = runtime
        self.cors_origins = frozenset(runtime.settings.cors_origins)
        limits = limits or Open311Limits()
        self.reads = RateLimiter(limits.read_burst, limits.reads_per_second)
        self.posts = RateLimiter(limits.post_burst, limits.posts_per_second)

    def pace(self, limiter: RateLimiter, key: str) -> None:
        wait = limiter.take(key)
        if wait:
            raise Open311Error(429, "too many requests; slow down", retry_after=max(1, math.ceil(wait)))

    @property
    def sessionmaker(self):
        return self.runtime.sessionmaker

    async def discovery(self, request: web.Request) -> web.Response:
        self.pace(self.reads, client_address(request))
        base = public_base(self.runtime.settings, request)
        data = {
            "changeset": CHANGESET,
            "contact": "Lhasa grid-based service management (拉萨市网格化服务管理)",
            "key_service": "API keys are account tokens made by the platform's administrators (gridbot token create).",
            "endpoints": [{
                "specification": SPECIFICATION,
                "url": base + BASE,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }],
        }
        return respond(_format_of(request), "discovery", None, data)

    async def services(self, request: web.Request) -> web.Response:
        self.pace(self.reads, client_address(request))
        language = language_of(request)
        async with self.sessionmaker() as session:
            rows = await session.scalars(select(Matter).where(Matter.withdrawn_at.is_(None)).order_by(Matter.code))
            data = [service_view(m, language) for m in rows]
        return respond(_format_of(request), "services", "service", data)

    async def service_definition(self, request: web.Request) -> web.Response:
        self.pace(self.reads, client_address(request))
        code = request.match_info["code"]
        async with self.sessionmaker() as session:
            matter = await session.scalar(select(Matter).where(Matter.code == code, Matter.withdrawn_at.is_(None)))
        if matter is None:
            raise Open311Error(404, f"service_code {code!r} was not found")
        return respond(_format_of(request), "service_definition", None, {"service_code": matter.code, "attributes": []})

    async def requests(self, request: web.Request) -> web.Response:
        self.pace(self.reads, client_address(request))
        query = request.query
        numbers = _list(query.get("service_request_id"))[:MAX_RESULTS]
        filters = queries.CaseFilter()
        if numbers:
            filters.numbers = numbers  # overrides every other argument
        else:
            filters.matter_codes = _list(query.get("service_code")) or None
            statuses = _list(query.get("status"))
            if any(s not in ("open", "closed") for s in statuses):
                raise Open311Error(400, "status is open or closed")
            if statuses and set(statuses) != {"open", "closed"}:
                filters.states = list(OPEN_STATES) if "open" in statuses else list(CLOSED_STATES)
            start = _time(query["start_date"], "start_date") if query.get("start_date") else None
            end = _time(query["end_date"], "end_date", end=True) if query.get("end_date") else None
            if start is None and end is None:
                end = utcnow() + timedelta(seconds=1)
                start = end - WINDOW
            elif start is None:
                start = end - WINDOW
            elif end is None:
                end = start + WINDOW
            if end - start > WINDOW + timedelta(days=1):
                raise Open311Error(400, "start_date and end_date may not span more than 90 days")
            if end <= start:
                raise Open311Error(400, "end_date is before start_date")
            filters.created_from, filters.created_before = start, end
        rows = await self._request_rows(request, filters)
        return respond(_format_of(request), "service_requests", "request", rows)

    async def one_request(self, request: web.Request) -> web.Response:
        self.pace(self.reads, client_address(request))
        number = request.match_info["id"]
        rows = await self._request_rows(request, queries.CaseFilter(numbers=[number]))
        if not rows:
            raise Open311Error(404, f"service_request_id {number!r} was not found")
        return respond(_format_of(request), "service_requests", "request", rows)

    async def _request_rows(self, request: web.Request, filters: queries.CaseFilter) -> list[dict[str, Any]]:
        language = language_of(request)
        async with self.sessionmaker() as session:
            found, _total = await queries.public_cases(session, filters, limit=MAX_RESULTS)
            context = await Context.load(session, found)
            return [request_view(case, context, language) for case in found]

    async def create_request(self, request: web.Request) -> web.Response:
        if "api_key" in request.query:
            # Never read it from the URL: URLs land in access logs and proxies.
            raise Open311Error(400, "send api_key in the request body, not in the URL")
        form = await request.post()

        def field(name: str) -> str:
            value = form.get(name) or request.query.get(name) or ""
            return value.strip() if isinstance(value, str) else ""  # a file is no answer to a text field

        secret = form.get("api_key")
        secret = secret.strip() if isinstance(secret, str) else ""
        if not secret:
            raise Open311Error(403, "api_key is missing: ask the platform's administrators for one")
        async with self.sessionmaker() as session:
            token = await api_tokens.authenticate(session, secret)
            if token is None:
                raise Open311Error(403, "invalid api_key: unknown, expired or revoked")
            if not api_tokens.has_scope(token, "report"):
                raise Open311Error(403, "this api_key may not submit requests (it lacks the 'report' scope)")
            reporter_id, token_id = token.person_id, token.id
        self.pace(self.posts, f"token:{token_id}")

        code = field("service_code")
        if not code:
            raise Open311Error(400, "service_code is required")
        lat, lon, address_id = field("lat"), field("long"), field("address_id")
        latitude = longitude = grid_code = None
        if lat or lon:
            if not (lat and lon):
                raise Open311Error(400, "lat and long must be sent together")
            latitude, longitude = _float(lat, "lat", -90, 90), _float(lon, "long", -180, 180)
        elif address_id:
            grid_code = address_id  # our address ids are grid codes
        else:
            raise Open311Error(400, "a location is required: lat and long (or address_id, a grid code); "
                                    "address_string alone cannot place the report in a grid")
        description = field("description")
        phone = field("phone") or None
        if phone and len(phone) > MAX_PHONE:
            raise Open311Error(400, f"phone may hold at most {MAX_PHONE} characters")
        # first_name, last_name, email, device_id, account_id and media_url are not kept: only the phone,
        # which the grid worker and the handling department need to reach the resident.
        # A client may send an Idempotency-Key header: the same key again returns the first request's
        # case instead of opening a second one (recorded with the case, in the same transaction).
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > 40 or (key and not key.isprintable()):
            raise Open311Error(400, "Idempotency-Key may hold at most 40 printable characters")
        async with self.sessionmaker.begin() as session:
            await writing(session)
            if key:
                if session.bind.dialect.name == "postgresql":  # the same key at once: one after the other
                    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"),
                                          {"id": lock_id(f"open311:{token_id}:{key}")})
                seen = await session.get(ProcessedUpdate, ("open311", "", "", f"{token_id}:{key}"))
                if seen is not None:
                    data = [{"service_request_id": seen.replies[0]["number"], "service_notice": None, "account_id": None}]
                    return respond(_format_of(request), "service_requests", "request", data, status=200)
            if grid_code is not None:
                grid = await session.scalar(select(Node).where(Node.code == grid_code, Node.level == NodeLevel.grid))
                if grid is None:
                    raise Open311Error(400, f"address_id {grid_code!r} is not a grid code")
            case = await cases.open_case(
                session,
                reporter_id=reporter_id,
                matter_code=code,
                description=description,
                language=words.detect_language(description) or language_of(request),
                source=CaseSource.resident_report,
                grid_code=grid_code,
                latitude=latitude,
                longitude=longitude,
                address=field("address_string") or None,
                contact_phone=phone,
            )
            if key:
                session.add(ProcessedUpdate(platform="open311", update_id=f"{token_id}:{key}",
                                            replies=[{"number": case.number}], answered_at=utcnow()))
            if api_tokens.needs_touch(await session.get_one(ApiToken, token_id)):
                await api_tokens.touch(session, token_id)
            number = case.number
        data = [{"service_request_id": number, "service_notice": None, "account_id": None}]
        return respond(_format_of(request), "service_requests", "request", data, status=201)


OPEN311 = web.AppKey("open311", Open311)


def setup(app: web.Application, runtime, limits: Open311Limits | None = None) -> None:
    """Add the Open311 GeoReport v2 routes and their error middleware to the app."""
    open311 = app[OPEN311] = Open311(runtime, limits)
    app.middlewares.append(open311_errors)
    app.router.add_get(f"/open311/discovery.{FMT}", open311.discovery)
    app.router.add_get(f"{BASE}/services.{FMT}", open311.services)
    app.router.add_get(f"{BASE}/services/{{code}}.{FMT}", open311.service_definition)
    app.router.add_get(f"{BASE}/requests.{FMT}", open311.requests)
    app.router.add_post(f"{BASE}/requests.{FMT}", open311.create_request)
    app.router.add_get(f"{BASE}/requests/{{id}}.{FMT}", open311.one_request)
