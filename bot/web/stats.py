"""GET /api/stats (JSON), /api/stats.csv and /api/stats.xlsx: the indicators of storage.indicators.

`?node=CODE|department=CODE|matter=CODE&from=YYYY-MM-DD&to=YYYY-MM-DD` (combinable; the period
defaults to the current month, the node to the widest one the caller's roles cover). The export has
one row per child unit, ranked, then the unit itself, for the monthly assessment (考核).
Aggregates only: no case, person or place below the unit appears.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from aiohttp import web

from storage import indicators
from storage.indicators import COUNTS, RATES, TIMES, Indicators, Report, Scope
from storage.people import active_roles

from .api import CASE_API, ApiError, iso, json_response, names, one, query_params

PARAMS = {"node", "department", "matter", "from", "to"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT_COUNTS = [c for c in COUNTS if c != "reported_resolved_on_spot"]


def node_view(node) -> dict[str, Any]:
    return {**names(node), "level": node.level.value}


def figures_view(figures: Indicators, weights: dict[str, float]) -> dict[str, Any]:
    return figures.as_dict(weights)


def report_view(report: Report) -> dict[str, Any]:
    ranked = report.ranked()
    bottom = {n.code for n in report.bottom_three()}
    return {
        "scope": {"node": node_view(report.scope.node), "department": names(report.scope.department),
                  "matter": names(report.scope.matter)},
        "period": {"from": report.period.first.isoformat(), "to": report.period.last.isoformat()},
        "as_of": iso(report.as_of),
        **figures_view(report.total, report.weights),
        "weights": report.weights,
        "children": [
            {"node": node_view(node), "rank": index + 1 if score is not None else None,
             "bottom_three": node.code in bottom, **figures_view(figures, report.weights)}
            for index, (node, figures, score) in enumerate(ranked)
        ],
    }


HEADER = (["code", "name_zh", "name_bo", "level", "rank", "composite_score"] + EXPORT_COUNTS + list(RATES)
          + [f"{t}_{k}" for t in TIMES for k in ("median_hours", "p90_hours")])


def export_rows(report: Report) -> list[list[Any]]:
    """The rows of the CSV and XLSX: child units ranked, then the unit itself (rank empty)."""
    rows = []
    units = [(node, figures, score, index + 1 if score is not None else None)
             for index, (node, figures, score) in enumerate(report.ranked())]
    units.append((report.scope.node, report.total, report.total.composite_score(report.weights), None))
    for node, figures, score, rank in units:
        data = figures.as_dict(report.weights)
        times = data["times"]
        rows.append(
            [node.code, node.name_zh, node.name_bo, node.level.value, rank, score]
            + [data["counts"][c] for c in EXPORT_COUNTS]
            + [data["rates"].get(r) for r in RATES]
            + [times.get(t, {}).get(k) for t in TIMES for k in ("median_hours", "p90_hours")]
        )
    return rows


def to_csv(report: Report) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in export_rows(report):
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # the BOM lets spreadsheet programs read Chinese


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = report.period.label.replace("/", "_")[:31]
    sheet.append(HEADER)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    rate_columns = {HEADER.index(r) + 1 for r in RATES}
    for row in export_rows(report):
        sheet.append(row)
        for column in rate_columns:
            sheet.cell(row=sheet.max_row, column=column).number_format = "0.0%"
    sheet.freeze_panes = "B2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def may_read(assignments, scope: Scope) -> bool:
    """Grid staff and centres read the units at or under their node; a department reads its own figures."""
    for assignment in assignments:
        if assignment.node is not None and assignment.role.value != "resident" and assignment.node.contains(scope.node):
            return True
        if (assignment.department_id is not None and scope.department is not None
                and assignment.department_id == scope.department.id):
            return True
    return False


def default_scope(assignments) -> tuple[Any, str | None]:
    """(widest node, own department) among the caller's roles."""
    nodes = sorted((a.node for a in assignments if a.node is not None), key=lambda n: len(n.path))
    department = next((a.department.code for a in assignments if a.department is not None), None)
    return (nodes[0] if nodes else None), (None if nodes else department)


async def read_report(runtime, person_id: int, params: dict[str, list[str]], now: datetime | None = None) -> Report:
    async with runtime.sessionmaker() as session:
        assignments = await active_roles(session, person_id)
        node, own_department = default_scope(assignments)
        department = one(params, "department") or (own_department if one(params, "node") is None else None)
        scope = await indicators.resolve_scope(session, one(params, "node"), department, one(params, "matter"),
                                               default_node=node)
        if not may_read(assignments, scope):
            raise ApiError(403, "forbidden", "your roles do not cover these figures")
        period = indicators.period_from(one(params, "from"), one(params, "to"), now)
        return await indicators.compute(session, scope, period, now=now)


class StatsApi:
    def __init__(self, app: web.Application):
        self.app = app

    async def report(self, request: web.Request) -> Report:
        api = request.app[CASE_API]
        caller = await api.caller(request)
        params = query_params(request, PARAMS)
        return await read_report(api.runtime, caller.person_id, params)

    async def json(self, request: web.Request) -> web.Response:
        return json_response(report_view(await self.report(request)))

    @staticmethod
    def _filename(report: Report, extension: str) -> str:
        return f"stats-{report.scope.node.code}-{report.period.label.replace('/', '_')}.{extension}"

    async def csv(self, request: web.Request) -> web.Response:
        report = await self.report(request)
        return web.Response(body=to_csv(report), content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="{self._filename(report, "csv")}"'})

    async def xlsx(self, request: web.Request) -> web.Response:
        report = await self.report(request)
        return web.Response(body=to_xlsx(report), content_type=XLSX_TYPE, headers={
            "Content-Disposition": f'attachment; filename="{self._filename(report, "xlsx")}"'})


def setup(app: web.Application) -> None:
    """After api.setup: the routes use the case API's tokens, pacing and error middleware."""
    stats = StatsApi(app)
    app.router.add_get("/api/stats", stats.json)
    app.router.add_get("/api/stats.csv", stats.csv)
    app.router.add_get("/api/stats.xlsx", stats.xlsx)
