"""Notification dispatch benchmark: Telegram's pace kept by one and by two instances.

    python -m bench.bench_dispatch [--backend sqlite|postgresql|both] [--pg-url URL]
                                   [--chats 300] [--busy 20] [--web 50] [--rate 30]

What is measured, per backend, with one dispatcher instance and then with two:

* A fake Bot API in this process that behaves like Telegram's flood control: per bot a
  bucket of 30 messages refilled at 30/s, per chat one message a second (a message to a
  chat less than 1 s after the previous one), each answered with 429 and retry_after 1.
  It records when every sendMessage arrived.
* Each instance is a child process running `bot.dispatcher.Dispatcher.run` with the
  product's `TelegramChannel` (python-telegram-bot's Bot against the fake API) and
  `WebChannel`, on one database (a fresh SQLite file, or PostgreSQL at --pg-url, which is
  wiped): what `gridbot run` does with GRIDBOT_DISPATCHER=yes, without the chat front doors.
* Once the instances are running, the outbox gets at once: one notification for each of
  `--chats` Telegram chats, `--busy` for one more chat, and one for each of `--web` web-chat
  users. Figures: Telegram messages a second while the `--chats` are drained, against the
  configured rate; gaps between the busy chat's messages; 429s answered (each one costs the
  bot `retry_after` seconds: seconds of 429 per message); web-inbox delivery delay (inbox
  row written − the notifications' commit); Telegram notice delay (arrival − that commit).

Results: a Markdown table on stdout and bench/results/dispatch.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "dispatch.json"
TOKEN = "5555:BENCH-dispatch"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


# -- the fake Telegram with flood control ----------------------------------------------------------


class FloodControlledBotApi:
    def __init__(self, per_second: float = 30.0, burst: float = 30.0, chat_interval: float = 1.0):
        self.per_second, self.burst, self.chat_interval = per_second, burst, chat_interval
        self.tokens, self.refilled = burst, time.monotonic()
        self.last_in_chat: dict[str, float] = {}
        self.sent: list[tuple[str, float, str]] = []  # (chat, wall time, text)
        self.refused: list[tuple[str, float, str]] = []  # (chat, wall time, why)
        self._messages = 0

    async def start(self):
        from aiohttp import web

        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self.method)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def method(self, request):
        from aiohttp import web

        method = request.match_info["method"]
        params = dict(await request.post()) if request.can_read_body else {}
        if method == "getMe":
            return web.json_response({"ok": True, "result": {"id": 5555, "is_bot": True, "first_name": "Bench"}})
        if method != "sendMessage":
            return web.json_response({"ok": True, "result": True})
        chat, now, wall = str(params.get("chat_id")), time.monotonic(), time.time()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.per_second)
        self.refilled = now
        why = None
        if chat in self.last_in_chat and now - self.last_in_chat[chat] < self.chat_interval:
            why = "chat"
        elif self.tokens < 1:
            why = "bot"
        if why:
            self.refused.append((chat, wall, why))
            return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                      "parameters": {"retry_after": 1}}, status=429)
        self.tokens -= 1
        self.last_in_chat[chat] = now
        self.sent.append((chat, wall, params.get("text", "")))
        self._messages += 1
        return web.json_response({"ok": True, "result": {
            "message_id": self._messages, "date": int(wall), "chat": {"id": int(chat) if chat.lstrip("-").isdigit() else 0,
                                                                      "type": "private"}, "text": params.get("text", "")}})


# -- one dispatcher instance (child process) --------------------------------------------------------


async def run_instance(args) -> None:
    from telegram import Bot
    from telegram.request import HTTPXRequest

    from bot.dispatcher import Dispatcher
    from bot.telegram.channel import TelegramChannel
    from bot.web.chat import WebChannel
    from storage.db import make_engine, make_sessionmaker

    engine = make_engine(args.database_url)
    sessionmaker = make_sessionmaker(engine)
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{args.api_port}/bot", request=HTTPXRequest(connection_pool_size=64))
    await bot.initialize()
    channels = [TelegramChannel(bot, per_second=args.rate), WebChannel(sessionmaker)]
    dispatcher = Dispatcher(sessionmaker, channels)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await dispatcher.run(stop)
    await bot.shutdown()
    await engine.dispose()


# -- the measured run ---------------------------------------------------------------------------


async def _fresh_pg(url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    connection = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                       password=parsed.password, database="postgres")
    try:
        name = parsed.database.replace('"', '""')
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def prepare(backend: str, args) -> tuple[str, tempfile.TemporaryDirectory | None]:
    from storage import migrate

    if backend == "sqlite":
        folder = tempfile.TemporaryDirectory(prefix="bench-dispatch-")
        url = f"sqlite+aiosqlite:///{folder.name}/bench.sqlite3"
    else:
        folder, url = None, args.pg_url
        asyncio.run(_fresh_pg(url))
    migrate.upgrade(url)
    return url, folder


async def measure(url: str, instances: int, args) -> dict:
    from sqlalchemy import func, select, text

    from bench.outbox_load import enqueue
    from storage.db import make_engine, make_sessionmaker
    from storage.models import Base, Notification, WebInboxMessage

    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    async with engine.begin() as conn:  # a clean outbox and pace for each run
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(text(f"DELETE FROM {table.name}"))
    api = await FloodControlledBotApi(per_second=args.rate).start()
    children = []
    for _ in range(instances):
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_dispatch", "instance", "--database-url", url,
            "--api-port", str(api.port), "--rate", str(args.rate), cwd=ROOT, stdout=subprocess.PIPE)
        children.append(child)
    for child in children:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.strip() == b"ready", line
    chats = [("telegram", str(100_000 + i), 1) for i in range(args.chats)]
    busy = [("telegram", "999999", args.busy)]
    webs = [("web", f"{i:032x}", 1) for i in range(args.web)]
    started = time.time()
    ids = await enqueue(sessionmaker, chats + busy + webs)
    enqueued = time.time()
    total = args.chats + args.busy + args.web
    deadline = time.monotonic() + 120 + total / args.rate * 3
    while time.monotonic() < deadline:
        async with sessionmaker() as session:
            left = await session.scalar(select(func.count()).select_from(Notification).where(
                Notification.sent_at.is_(None), Notification.gave_up_at.is_(None)))
        if not left:
            break
        await asyncio.sleep(0.25)
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        await child.wait()
    async with sessionmaker() as session:
        web_rows = (await session.execute(select(WebInboxMessage.created_at))).scalars().all()
        not_sent = await session.scalar(select(func.count()).select_from(Notification).where(Notification.sent_at.is_(None)))
    await api.stop()
    await engine.dispose()

    written = enqueued  # the notifications became visible when their transaction committed
    quiet_chats = {chat for _, chat, _ in chats}
    mass = sorted(at for chat, at, _ in api.sent if chat in quiet_chats)
    telegram_times = sorted(at for _, at, _ in api.sent)
    window = (mass[0], mass[-1]) if mass else (0, 0)
    in_window = [t for t in telegram_times if window[0] <= t <= window[1]]
    rate = (len(in_window) - 1) / (window[1] - window[0]) if window[1] > window[0] else float("nan")
    busy_times = sorted(at for chat, at, _ in api.sent if chat == "999999")
    gaps = [b - a for a, b in zip(busy_times, busy_times[1:])]
    delays = [at - written for _, at, _ in api.sent]
    web_delays = [row.timestamp() - written for row in web_rows]
    per_chat = {}
    for chat, _, _ in api.sent:
        per_chat[chat] = per_chat.get(chat, 0) + 1
    doubled = sum(1 for chat, n in per_chat.items() if chat != "999999" and n > 1)
    return {
        "instances": instances,
        "configured_rate": args.rate,
        "enqueue_seconds": round(enqueued - started, 3),
        "telegram_sent": len(api.sent),
        "telegram_expected": args.chats + args.busy,
        "not_sent": not_sent,
        "doubled_chats": doubled,
        "rate_during_mass": round(rate, 2),
        "rate_ratio": round(rate / args.rate, 3),
        "busy_chat_messages": len(busy_times),
        "busy_gaps_under_1s": sum(1 for g in gaps if g < 1.0),
        "busy_min_gap": round(min(gaps), 3) if gaps else None,
        "refused_429": len(api.refused),
        "refused_by": {why: sum(1 for *_, w in api.refused if w == why) for why in ("bot", "chat")},
        "seconds_of_429_per_message": round(len(api.refused) * 1.0 / max(1, len(api.sent)), 4),
        "telegram_delay_p50": round(percentile(delays, 50), 3),
        "telegram_delay_p99": round(percentile(delays, 99), 3),
        "web_delivered": len(web_rows),
        "web_delay_p50": round(percentile(web_delays, 50), 3),
        "web_delay_p99": round(percentile(web_delays, 99), 3),
        "web_delay_max": round(max(web_delays), 3) if web_delays else None,
    }


def markdown(results: list[dict]) -> str:
    lines = ["| database | instances | Telegram msgs/s while draining the 300 (× of 30) | busy chat: gaps < 1 s (min gap) "
             "| 429s | web inbox delay p50 / max | Telegram notice delay p50 / p99 | lost / doubled |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for run in r["runs"]:
            lines.append(
                f"| {r['backend']} | {run['instances']} | {run['rate_during_mass']} (×{run['rate_ratio']}) "
                f"| {run['busy_gaps_under_1s']} ({run['busy_min_gap']} s) | {run['refused_429']} "
                f"| {run['web_delay_p50']} / {run['web_delay_max']} s | {run['telegram_delay_p50']} / {run['telegram_delay_p99']} s "
                f"| {run['not_sent']} / {run['doubled_chats']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    instance = sub.add_parser("instance")
    instance.add_argument("--database-url", required=True)
    instance.add_argument("--api-port", type=int, required=True)
    instance.add_argument("--rate", type=float, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/bench_dispatch")
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--busy", type=int, default=20)
    parser.add_argument("--web", type=int, default=50)
    parser.add_argument("--rate", type=float, default=30)
    args = parser.parse_args(argv)
    if args.mode == "instance":
        asyncio.run(run_instance(args))
        return
    results = []
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        url, folder = prepare(backend, args)
        runs = []
        for instances in (1, 2):
            log(f"{backend}: {instances} instance(s)…")
            runs.append(asyncio.run(measure(url, instances, args)))
            log(json.dumps(runs[-1]))
        results.append({"backend": backend, "runs": runs})
        if folder is not None:
            folder.cleanup()
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average": os.getloadavg()}, "args": vars(args), "results": results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
