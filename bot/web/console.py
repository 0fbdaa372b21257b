"""The grid-centre console at /console/: the staff member's queue as a table to sort and filter, each
case with its timeline, photos, location and the actions their role allows, the indicators and the
bulletins. Signed in by a one-time link from the chat (/console); the session is an HttpOnly,
SameSite=Lax cookie limited to /console/, and every change carries a CSRF token.

The same rules as the chat and the case API: storage.access and storage.queries decide what is seen,
storage.cases.act what is done (lifecycle table, events, outbox); bot.web.api shapes a case.
"""

from __future__ import annotations

import mimetypes
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import and_, func, or_, select

from conversations.dialogs.staff import ACTION_BUTTONS, QUESTIONS
from conversations.figures import KEY_FIGURES
from conversations.i18n import LANGUAGES, N_, translate
from conversations.wording import ACTION_NAMES, RATING_NAMES, ROLE_NAMES, STATE_NAMES
from storage import cases, console_logins, queries
from storage.db import writing
from storage.indicators import Period
from storage.lifecycle import OPEN_STATES, STATES, CaseError
from storage.models import Attachment, Case, CaseView, Department, Matter, Node, NodeLevel, Person
from storage.people import active_roles
from storage.timeutil import utcnow

from ..runtime import Runtime
from . import api, stats

COOKIE = "gridbot_console"
STATIC = Path(__file__).resolve().parent / "static"
DUE_SOON = timedelta(hours=24)
HANDLING = ("transferred", "in_progress")
MAX_ROWS = 200
SORTS = {
    "created": Case.created_at, "number": Case.number, "state": Case.state, "matter": Matter.code,
    "grid": Node.code, "deadline": Case.handling_deadline,
}
WORDS = {
    "title": N_("Grid-centre console"),
    "queue": N_("Queue"),
    "dashboard": N_("Indicators"),
    "bulletins": N_("Bulletins"),
    "sign_out": N_("Sign out"),
    "state": N_("State"),
    "matter": N_("Kind of problem"),
    "grid": N_("Grid"),
    "number": N_("Case number"),
    "created": N_("Reported"),
    "deadline": N_("Due"),
    "all": N_("All"),
    "open": N_("Open cases"),
    "overdue": N_("Overdue"),
    "due_soon": N_("Due within 24 hours"),
    "filter": N_("Show"),
    "nothing": N_("No case matches."),
    "timeline": N_("Timeline"),
    "photos": N_("Photos"),
    "location": N_("Location"),
    "open_map": N_("Open in a map app"),
    "actions": N_("Actions"),
    "no_actions": N_("Your role allows no action on this case now."),
    "send": N_("Confirm"),
    "cancel": N_("Cancel"),
    "done": N_("Done."),
    "description": N_("Description"),
    "reporter_phone": N_("Reporter's phone"),
    "anonymous": N_("Reporter: anonymous"),
    "result": N_("Result"),
    "rating": N_("Rating"),
    "from": N_("From"),
    "to": N_("To"),
    "unit": N_("Unit"),
    "bulletin_of": N_("Monthly bulletin"),
    "back": N_("Back to the list"),
    "signed_out": N_("You are signed out. Send /console in the chat for a new sign-in link."),
    "error": N_("That did not work. Please look at the case again."),
    "not_allowed_in_state": N_("This action is no longer possible in the case's present state."),
    "concurrent_change": N_("Someone else changed the case meanwhile. It has been reloaded."),
    "missing_input": N_("Please fill in what is asked."),
    "invalid_input": N_("Please check what you entered."),
    "forbidden": N_("Your role does not allow this."),
    "not_found": N_("No such case among those you may see."),
    "link_used": N_("This sign-in link is used or expired. Send /console in the chat for a new one."),
}


def words(language: str) -> dict[str, Any]:
    """Every word the console page shows, in the reader's language (the page has no text of its own)."""
    return {
        "ui": {k: translate(language, v) for k, v in WORDS.items()},
        "states": {k: translate(language, v) for k, v in STATE_NAMES.items()},
        "actions": {k: translate(language, v) for k, v in ACTION_BUTTONS.items()},
        "events": {k: translate(language, v) for k, v in ACTION_NAMES.items()},
        "inputs": {k: translate(language, v) for k, v in QUESTIONS.items()},
        "roles": {k: translate(language, v) for k, v in ROLE_NAMES.items()},
        "ratings": {k: translate(language, v) for k, v in RATING_NAMES.items()},
        "figures": [[key, translate(language, msgid), kind] for key, msgid, kind in KEY_FIGURES],
        "hours": translate(language, "{hours} hours", hours="{hours}"),
    }


class ConsoleError(Exception):
    def __init__(self, status: int, code: str):
        super().__init__(code)
        self.status, self.code = status, code


class Console:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.https = (runtime.settings.public_url or "").startswith("https://")

    @property
    def sessionmaker(self):
        return self.runtime.sessionmaker

    # ------------------------------------------------------------ signing in

    async def login(self, request: web.Request) -> web.Response:
        async with self.sessionmaker.begin() as session:
            await writing(session)
            secret = await console_logins.redeem(session, request.match_info["secret"])
        if secret is None:
            text = "".join(f'<p lang="{"zh-Hans" if lang == "zh" else "bo"}">{translate(lang, WORDS["link_used"])}</p>'
                           for lang in LANGUAGES)
            return web.Response(status=403, content_type="text/html", charset="utf-8", text=(
                '<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8"><meta name="viewport" '
                'content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
                '<link rel="stylesheet" href="/static/console.css">'
                f'<title>gridbot</title></head><body><main class="signed-out">{text}</main></body></html>'))
        response = web.HTTPSeeOther("/console/")
        response.set_cookie(COOKIE, secret, max_age=int(console_logins.SESSION_LIFETIME.total_seconds()),
                            path="/console/", httponly=True, samesite="Lax", secure=self.https)
        response.headers["Cache-Control"] = "no-store"
        raise response

    async def page(self, request: web.Request) -> web.Response:
        return web.FileResponse(STATIC / "console.html", headers={"Cache-Control": "no-store"})

    async def person(self, request: web.Request, *, changing: bool = False) -> int:
        secret = request.cookies.get(COOKIE)
        async with self.sessionmaker() as session:
            person_id = await console_logins.authenticate(session, secret)
        if person_id is None:
            raise ConsoleError(401, "signed_out")
        if changing and request.headers.get("X-CSRF-Token") != console_logins.csrf_token(secret):
            raise ConsoleError(403, "forbidden")
        return person_id

    async def logout(self, request: web.Request) -> web.Response:
        await self.person(request, changing=True)
        async with self.sessionmaker.begin() as session:
            await writing(session)
            await console_logins.sign_out(session, request.cookies[COOKIE])
        response = web.json_response({"signed_out": True})
        response.del_cookie(COOKIE, path="/console/")
        return response

    # ------------------------------------------------------------ reading

    async def me(self, request: web.Request) -> web.Response:
        person_id = await self.person(request)
        language = request.query.get("language")
        async with self.sessionmaker() as session:
            person = await session.get_one(Person, person_id)
            language = language if language in LANGUAGES else person.language
            assignments = await active_roles(session, person_id)
            departments = list(await session.scalars(select(Department).order_by(Department.code)))
            matters = list(await session.scalars(select(Matter).where(Matter.withdrawn_at.is_(None)).order_by(Matter.code)))
            units = sorted({a.node.code: a.node for a in assignments if a.node is not None}.values(), key=lambda n: n.path)
            grid_paths = [n.path for n in units]
            grids = [n for n in await session.scalars(select(Node).where(Node.level == NodeLevel.grid).order_by(Node.code))
                     if any(n.path.startswith(p) for p in grid_paths)]
        this_month = Period.of(utcnow())
        months = [this_month.previous().label, this_month.label]
        return web.json_response({
            "language": language,
            "csrf": console_logins.csrf_token(request.cookies[COOKIE]),
            "roles": [{"role": a.role.value, "scope": (a.node or a.department).name(language) if (a.node or a.department) else ""}
                      for a in assignments],
            "units": [{"code": n.code, "name": n.name(language)} for n in units],
            "months": months,
            "departments": [{"code": d.code, "name": d.name(language)} for d in departments],
            "matters": [{"code": m.code, "name": m.name(language)} for m in matters],
            "grids": [{"code": g.code, "name": g.name(language)} for g in grids],
            "states": STATES,
            "words": words(language),
        }, dumps=api._dumps)

    async def list_cases(self, request: web.Request) -> web.Response:
        person_id = await self.person(request)
        query = request.query
        now = utcnow()
        state = query.get("state", "open")
        sort = query.get("sort", "created")
        if sort not in SORTS:
            raise ConsoleError(422, "invalid_input")
        descending = query.get("order", "asc") == "desc"
        language = query.get("language") if query.get("language") in LANGUAGES else None
        async with self.sessionmaker() as session:
            person = await session.get_one(Person, person_id)
            language = language or person.language
            assignments = await active_roles(session, person_id)
            conditions = [queries.scope_condition(person_id, assignments)]
            filters = queries.CaseFilter(
                states=None if state in ("open", "all") else [state],
                matter_codes=[query["matter"]] if query.get("matter") else None,
                node_code=query.get("grid") or None,
            )
            try:
                conditions += await queries.filter_conditions(session, filters, strict=True)
            except CaseError:
                raise ConsoleError(422, "invalid_input") from None
            if state == "open":
                conditions.append(Case.state.in_(OPEN_STATES))
            overdue = or_(and_(Case.state.in_(HANDLING), Case.handling_deadline < now),
                          and_(Case.state == "handled", Case.verification_deadline < now))
            soon = or_(and_(Case.state.in_(HANDLING), Case.handling_deadline.between(now, now + DUE_SOON)),
                       and_(Case.state == "handled", Case.verification_deadline.between(now, now + DUE_SOON)))
            if query.get("flag") == "overdue":
                conditions.append(overdue)
            elif query.get("flag") == "due_soon":
                conditions.append(soon)
            column = SORTS[sort]
            order = column.desc() if descending else column.asc()
            statement = (select(Case).join(Matter, Matter.id == Case.matter_id).join(Node, Node.id == Case.grid_id)
                         .where(*conditions).order_by(order.nulls_last(), Case.id).limit(MAX_ROWS))
            found = list((await session.scalars(statement)).unique())
            total = await session.scalar(select(func.count(Case.id)).where(*conditions))
        rows = []
        for case in found:
            due = case.verification_deadline if case.state == "handled" else (
                case.handling_deadline if case.state in HANDLING else None)
            rows.append({
                "number": case.number, "state": case.state, "matter": case.matter.name(language),
                "grid": case.grid.name(language), "grid_code": case.grid.code,
                "created_at": api.iso(case.created_at), "due": api.iso(due),
                "overdue": due is not None and due < now, "due_soon": due is not None and now <= due <= now + DUE_SOON,
            })
        return web.json_response({"cases": rows, "total": int(total or 0), "shown": len(rows)}, dumps=api._dumps)

    async def case(self, request: web.Request) -> web.Response:
        person_id = await self.person(request)
        async with self.sessionmaker.begin() as session:
            await writing(session)
            body = await self._detail(session, person_id, request.match_info["number"], record=True,
                                      language=request.query.get("language"))
        return web.json_response(body, dumps=api._dumps)

    async def _detail(self, session, person_id: int, number: str, *, record: bool,
                      language: str | None = None) -> dict[str, Any]:
        try:
            case = await cases.case_for_person(session, person_id, number)
        except CaseError:
            raise ConsoleError(404, "not_found") from None
        assignments = await active_roles(session, person_id)
        if language not in LANGUAGES:
            language = (await session.get_one(Person, person_id)).language
        detail = api.case_detail(case, await cases.timeline(session, case.id), person_id, assignments)
        detail["matter_name"] = case.matter.name(language)
        detail["grid_name"] = case.grid.name(language)
        detail["department_name"] = case.department.name(language) if case.department else None
        location = detail["location"]
        if location["latitude"] is not None and location["longitude"] is not None:
            location["geo"] = f"geo:{location['latitude']},{location['longitude']}"
        detail["photos"] = [f"/console/api/cases/{case.number}/photos/{a.id}" for a in case.attachments if a.stored_path]
        if record:
            session.add(CaseView(case_id=case.id, person_id=person_id, channel="console",
                                 role=api.viewing_role(person_id, assignments, case)))
        return detail

    async def photo(self, request: web.Request) -> web.Response:
        person_id = await self.person(request)
        async with self.sessionmaker() as session:
            try:
                case = await cases.case_for_person(session, person_id, request.match_info["number"])
            except CaseError:
                raise ConsoleError(404, "not_found") from None
            attachment = await session.get(Attachment, int(request.match_info["id"]))
        if attachment is None or attachment.case_id != case.id or not attachment.stored_path:
            raise ConsoleError(404, "not_found")
        root = Path(self.runtime.settings.attachments_dir).resolve()
        path = Path(attachment.stored_path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise ConsoleError(404, "not_found")
        content_type = attachment.content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if not content_type.startswith("image/"):
            raise ConsoleError(404, "not_found")
        return web.Response(body=path.read_bytes(), content_type=content_type,
                            headers={"Cache-Control": "private, max-age=3600"})

    async def stats(self, request: web.Request) -> web.Response:
        person_id = await self.person(request)
        params = {k: [v] for k, v in request.query.items() if k in stats.PARAMS and v}
        try:
            report = await stats.read_report(self.runtime, person_id, params)
        except api.ApiError as exc:
            raise ConsoleError(exc.status, exc.code) from None
        except CaseError:
            raise ConsoleError(422, "invalid_input") from None
        return web.json_response(stats.report_view(report), dumps=api._dumps)

    # ------------------------------------------------------------ acting

    async def act(self, request: web.Request) -> web.Response:
        person_id = await self.person(request, changing=True)
        trigger = request.match_info["trigger"]
        number = request.match_info["number"].strip().upper()
        try:
            inputs = await api.action_body(request, trigger) if trigger in api.BY_TRIGGER else None
        except api.ApiError as exc:
            raise ConsoleError(422 if exc.status < 500 else exc.status, "invalid_input") from None
        if inputs is None:
            raise ConsoleError(404, "not_found")
        try:
            async with self.sessionmaker.begin() as session:
                await writing(session)
                await cases.act(session, number, person_id, trigger, **inputs)
                body = await self._detail(session, person_id, number, record=True,
                                          language=request.query.get("language"))
        except CaseError as exc:
            status, code = api.domain_error(exc)
            raise ConsoleError(status, code if code in WORDS else "invalid_input") from None
        return web.json_response(body, dumps=api._dumps)


@web.middleware
async def console_errors(request: web.Request, handler):
    """JSON errors with a stable code and the message in the reader's language, for /console/api/."""
    if not request.path.startswith("/console/api/"):
        return await handler(request)
    try:
        response = await handler(request)
    except ConsoleError as exc:
        language = request.query.get("language")
        msgid = WORDS.get(exc.code, WORDS["error"])
        if language in LANGUAGES and exc.code != "signed_out":
            message = translate(language, msgid)
        else:  # before we know who reads it: both languages, one a line
            message = "\n".join(translate(lang, msgid) for lang in LANGUAGES)
        response = web.json_response({"error": {"code": exc.code, "message": message}}, status=exc.status,
                                     dumps=api._dumps)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = web.json_response({"error": {"code": api.HTTP_CODES.get(exc.status, "http_error"),
                                                "message": exc.reason}}, status=exc.status)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def setup(app: web.Application, runtime: Runtime) -> None:
    console = Console(runtime)
    app.middlewares.append(console_errors)
    async def to_console(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect("/console/")

    app.router.add_get("/console", to_console)
    app.router.add_get("/console/", console.page)
    app.router.add_get("/console/login/{secret}", console.login)
    app.router.add_get("/console/api/me", console.me)
    app.router.add_post("/console/api/logout", console.logout)
    app.router.add_get("/console/api/cases", console.list_cases)
    app.router.add_get("/console/api/cases/{number}", console.case)
    app.router.add_get("/console/api/cases/{number}/photos/{id:\\d+}", console.photo)
    app.router.add_post("/console/api/cases/{number}/actions/{trigger}", console.act)
    app.router.add_get("/console/api/stats", console.stats)
