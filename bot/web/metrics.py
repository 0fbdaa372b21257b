"""`/metrics` in the Prometheus text format (version 0.0.4).

Counters come from `runtime.counters` (this process since it started); a key is a
metric name with optional labels, e.g. `updates_handled{platform="web"}`, and is
exposed as `gridbot_updates_handled_total{platform="web"}`. Adapters count with
`runtime.count(...)`. Gauges are read from the database at each scrape.
"""

from __future__ import annotations

import re
from collections import defaultdict

from aiohttp import web
from sqlalchemy import func, select

from storage import outbox, supervision
from storage.models import Case, DialogState, Notification, WebInboxMessage

from ..runtime import Runtime

KEY = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?$")
HELP = {
    "updates_received": "Messages received from people, per platform (retries included).",
    "updates_handled": "Messages handled by the dialogs, per platform (each once).",
    "updates_duplicate": "Messages received again (retried or redelivered) and not handled twice.",
    "updates_failed": "Messages whose handling failed with an error.",
    "dialog_steps": "Replies produced by dialog steps, per platform.",
    "rate_limited": "Requests refused by the rate limit.",
    "photos_received": "Photos uploaded.",
    "inbox_delivered": "Web inbox messages shown to people.",
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{labels} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


async def render(runtime: Runtime) -> str:
    out = Exposition()

    counters: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for key, value in sorted(runtime.counters.items()):
        match = KEY.match(key)
        if match is None:
            continue
        name, labels = match.group(1), match.group(2) or ""
        counters[name.removesuffix("_total")].append((labels, value))
    for name, samples in counters.items():
        out.family(f"gridbot_{name}_total", "counter", HELP.get(name, name.replace("_", " ") + "."), samples)

    dispatcher = runtime.dispatcher
    out.family("gridbot_notifications_sent_total", "counter", "Notifications delivered by this process's dispatcher.",
               [("", getattr(dispatcher, "sent", 0))])
    out.family("gridbot_send_failures_total", "counter",
               "Notification sends that failed and will be retried (this process's dispatcher).",
               [("", getattr(dispatcher, "failures", 0))])

    try:
        async with runtime.sessionmaker() as session:
            by_state = (await session.execute(select(Case.state, func.count()).group_by(Case.state))).all()
            backlog = await outbox.backlog(session)
            milestones_due = await supervision.pending_count(session)
            given_up = await session.scalar(
                select(func.count()).select_from(Notification).where(Notification.gave_up_at.is_not(None))
            )
            unseen = await session.scalar(
                select(func.count()).select_from(WebInboxMessage).where(WebInboxMessage.seen_at.is_(None))
            )
            dialogs = (await session.execute(
                select(DialogState.dialog, DialogState.state, func.count())
                .where(DialogState.dialog.is_not(None))
                .group_by(DialogState.dialog, DialogState.state)
            )).all()
    except Exception:
        out.family("gridbot_database_up", "gauge", "1 when the database answered this scrape.", [("", 0)])
        return out.text()

    out.family("gridbot_database_up", "gauge", "1 when the database answered this scrape.", [("", 1)])
    out.family("gridbot_cases", "gauge", "Cases by lifecycle state.",
               [(_labels(state=state), count) for state, count in sorted(by_state)])
    out.family("gridbot_milestones_due", "gauge",
               "Time-limit milestones (remind, escalate) due and not yet fired by the supervision sweep.",
               [("", milestones_due or 0)])
    out.family("gridbot_outbox_backlog", "gauge", "Notifications not yet sent and not given up.", [("", backlog or 0)])
    out.family("gridbot_outbox_given_up", "gauge", "Notifications given up after too many failed sends.", [("", given_up or 0)])
    out.family("gridbot_web_inbox_unseen", "gauge", "Web-chat messages waiting for their reader.", [("", unseen or 0)])
    out.family("gridbot_open_dialogs", "gauge", "Dialogs in progress, by dialog and step.",
               [(_labels(dialog=d, state=s or ""), count) for d, s, count in sorted(dialogs, key=lambda r: (r[0], r[1] or ""))])
    return out.text()


def setup(app: web.Application, runtime: Runtime) -> None:
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=await render(runtime), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", metrics)
