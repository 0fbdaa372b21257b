"""Telegram front door benchmark: N residents through the report dialog against the emulator,
next to a bare python-telegram-bot echo bot measured in the same run on the same emulator.

    python -m bench.bench_telegram [--residents 50] [--backend sqlite|postgresql|both] [--pg-url URL]
                                   [--poll-interval 0.05] [--rate-limiter]

Run from the repository root, after `npm install --prefix tests/e2e`. What is measured:

* Setup: one telegram-test-api 4.2.1 process (node), the harness's correcting proxy
  (tests/telegram_emulator.py) in this process, and the bot under test in a child
  process of its own (`serve` mode below), polling through the proxy with the same
  `poll_interval` for both bots (the emulator ignores getUpdates' timeout, so the
  interval paces polling; it adds on average half an interval to every step of both).
  No rate limiter unless --rate-limiter (the emulator has no flood control; Telegram's
  30 messages/s would otherwise be the figure).
* gridbot: `TelegramFrontDoor` in polling mode, a fresh migrated database with the demo
  district (SQLite file, and/or PostgreSQL at --pg-url, default database bench_tg, which
  is wiped), INFO logging to a file as `gridbot run` configures it. Each database gets
  its own emulator, echo run and gridbot run. Each resident: /start, language, menu, kind of problem,
  description, location, skip address, skip photos, stay anonymous, submit: 10 updates,
  the last one filing a case. All residents start at once.
* echo: a bare PTB `Application` (concurrent updates) that answers every message and
  button press with one text message; each user sends the same kinds of update in the
  same order (text, presses, a location).
* Step latency: from just before the user's message is posted to the emulator until
  the emulator has stored the bot's last message of that step (seen at the proxy when
  the emulator answers the bot's sendMessage). Updates per second: all updates of the
  measured run divided by its wall time (first send to last answer). A warm-up of 3
  users precedes each measured run.

Results: a Markdown table on stdout and bench/results/telegram.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "telegram.json"
GRID_POINT = (29.6558, 91.1220)
STREET_LIGHT = "GM-0301"
DESCRIPTION = "楼下的路灯已经坏了三天，晚上很黑。"


# -- the bots, each in its own process ---------------------------------------------------------


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.readline() else None)
    await stop.wait()


async def serve_gridbot(args) -> None:
    from bot.runtime import Runtime
    from bot.settings import Settings
    from bot.telegram.adapter import TelegramFrontDoor

    # As `gridbot run` configures logging (bot/cli.py): INFO, without SQLAlchemy's and httpx's.
    logging.basicConfig(filename=args.log, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings(database_url=args.database_url, telegram_token=args.token, telegram_api_base_url=args.base_url,
                        telegram_poll_interval=args.poll_interval, telegram_webhook_url=None,
                        attachments_dir=tempfile.mkdtemp(prefix="gridbot-bench-"))
    runtime = Runtime.build(settings)
    door = TelegramFrontDoor(runtime, rate_limiter=args.rate_limiter)
    await door.start()
    print("ready", flush=True)
    await _until_stopped()
    await door.stop()
    await runtime.db.dispose()


async def serve_echo(args) -> None:
    from telegram import Update
    from telegram.ext import AIORateLimiter, Application, CallbackQueryHandler, ContextTypes, MessageHandler, filters

    logging.basicConfig(filename=args.log, level=logging.WARNING)

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(update.effective_message.text or "echo")

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.callback_query.answer()
        await context.bot.send_message(update.effective_chat.id, f"echo {update.callback_query.data}")

    builder = Application.builder().token(args.token).base_url(args.base_url).concurrent_updates(True)
    if args.rate_limiter:
        builder = builder.rate_limiter(AIORateLimiter())
    app = builder.build()
    app.add_handler(CallbackQueryHandler(pressed))
    app.add_handler(MessageHandler(filters.ALL, echo))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=args.poll_interval)
    print("ready", flush=True)
    await _until_stopped()
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


class BotProcess:
    """The bot under test in a child process (it talks to the proxy, which runs in this event loop)."""

    def __init__(self, kind: str, token: str, base_url: str, options: argparse.Namespace, database_url: str, log: str):
        self.kind, self.log = kind, log
        self.command = [sys.executable, "-m", "bench.bench_telegram", "serve", kind, "--token", token,
                        "--base-url", base_url, "--database-url", database_url,
                        "--poll-interval", str(options.poll_interval), "--log", log]
        if options.rate_limiter:
            self.command.append("--rate-limiter")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> BotProcess:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        if b"ready" not in line:
            await self.stop()
            raise RuntimeError(f"the {self.kind} bot did not start (see {self.log})")
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU time of the bot process so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()


# -- simulated users ------------------------------------------------------------------------------


class Observed:
    """The bot's messages per chat, as the proxy sees the emulator store them."""

    def __init__(self):
        self.chats: dict[str, list[dict]] = {}
        self.events: dict[str, asyncio.Event] = {}

    def add(self, chat_id: str, message: dict) -> None:
        self.chats.setdefault(chat_id, []).append(message)
        event = self.events.get(chat_id)
        if event is not None:
            event.set()


def buttons(message: dict) -> list[str]:
    return [b.get("callback_data", "") for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def keyboard(message: dict) -> list[dict]:
    return [b for row in message.get("reply_markup", {}).get("keyboard", []) for b in row]


def button(data: str) -> Callable[[list[dict]], bool]:
    return lambda new: any(data in buttons(m) for m in new)


def asks(kind: str) -> Callable[[list[dict]], bool]:
    return lambda new: any(b.get(kind) for m in new for b in keyboard(m))


def removes_keyboard(new: list[dict]) -> bool:
    return any(m.get("reply_markup", {}).get("remove_keyboard") for m in new)


def filed(new: list[dict]) -> bool:
    return any("LS-" in m.get("text", "") for m in new) and button("menu:report")(new)


def any_message(new: list[dict]) -> bool:
    return bool(new)


# (what the user does, argument, when the step is complete)
REPORT = [
    ("command", "/start", button("lang:zh")),
    ("press", "lang:zh", button("menu:report")),
    ("press", "menu:report", button(f"matter:{STREET_LIGHT}")),
    ("press", f"matter:{STREET_LIGHT}", button("nav:back")),
    ("text", DESCRIPTION, asks("request_location")),
    ("location", GRID_POINT, button("address:skip")),
    ("press", "address:skip", button("photos:done")),
    ("press", "photos:done", asks("request_contact")),
    ("press", "phone:anonymous", removes_keyboard),
    ("press", "confirm:submit", filed),
]
ECHO = [(kind, argument, any_message) for kind, argument, _ in REPORT]


@dataclass
class User:
    http: "aiohttp.ClientSession"  # noqa: F821
    emulator_url: str
    token: str
    observed: Observed
    user_id: int
    latencies: list[float] = field(default_factory=list)

    async def _post(self, route: str, payload: dict) -> None:
        async with self.http.post(f"{self.emulator_url}/{route}", json=payload) as response:
            response.raise_for_status()

    def _message(self, **fields) -> dict:
        return {"botToken": self.token, "from": {"id": self.user_id, "is_bot": False, "first_name": "测试", "language_code": "zh"},
                "chat": {"id": self.user_id, "type": "private"}, "date": int(time.time()), **fields}

    async def run(self, script, timeout: float = 60) -> None:
        chat = str(self.user_id)
        inbox = self.observed.chats.setdefault(chat, [])
        event = self.observed.events.setdefault(chat, asyncio.Event())
        for kind, argument, complete in script:
            mark = len(inbox)
            started = time.perf_counter()
            if kind == "command":
                await self._post("sendCommand", self._message(
                    text=argument, entities=[{"type": "bot_command", "offset": 0, "length": len(argument)}]))
            elif kind == "text":
                await self._post("sendMessage", self._message(text=argument))
            elif kind == "location":
                await self._post("sendMessage", self._message(location={"latitude": argument[0], "longitude": argument[1]}))
            else:
                carrier = next((m for m in reversed(inbox) if argument in buttons(m)), inbox[-1] if inbox else {"message_id": 1})
                await self._post("sendCallback", {
                    "botToken": self.token, "from": self._message()["from"], "data": argument,
                    "message": {"message_id": carrier["message_id"], "date": int(time.time()),
                                "chat": {"id": self.user_id, "type": "private"}}})
            deadline = started + timeout
            while not complete(inbox[mark:]):
                event.clear()
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise TimeoutError(f"user {self.user_id}: no answer to {kind} {argument!r}: {inbox[mark:]}")
                try:
                    await asyncio.wait_for(event.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            self.latencies.append(time.perf_counter() - started)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def drive(kind: str, script, args, emulator, proxy, observed: Observed, database_url: str, workdir: Path, ids) -> dict:
    import aiohttp

    from tests.telegram_emulator import new_token

    token = new_token()
    log = str(workdir / f"{kind}.log")
    bot = await BotProcess(kind, token, proxy.base_url, args, database_url, log).start()
    try:
        async with aiohttp.ClientSession() as http:
            warm = [User(http, emulator.url, token, observed, next(ids)) for _ in range(3)]
            await asyncio.gather(*(u.run(script) for u in warm))
            users = [User(http, emulator.url, token, observed, next(ids)) for _ in range(args.residents)]
            cpu_before = bot.cpu_seconds()
            started = time.perf_counter()
            await asyncio.gather(*(u.run(script) for u in users))
            wall = time.perf_counter() - started
            cpu = bot.cpu_seconds() - cpu_before
    finally:
        await bot.stop()
    latencies = [x * 1000 for u in users for x in u.latencies]
    updates = len(users) * len(script)
    return {
        "bot": kind,
        "residents": len(users),
        "updates": updates,
        "wall_s": round(wall, 3),
        "updates_per_s": round(updates / wall, 1),
        "bot_cpu_ms_per_update": round(cpu * 1000 / updates, 2),
        "step_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p99": round(percentile(latencies, 99), 1),
            "mean": round(statistics.fmean(latencies), 1),
            "max": round(max(latencies), 1),
        },
    }


def prepare_database(args, backend: str, workdir: Path) -> str:
    import asyncio as _asyncio

    from storage import migrate
    from storage.db import make_engine, make_sessionmaker, writing
    from storage.seed import load_demo

    url = args.pg_url if backend == "postgresql" else f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}"
    if backend == "postgresql":
        migrate.downgrade(url, "base")
    migrate.upgrade(url)

    async def load():
        engine = make_engine(url)
        async with make_sessionmaker(engine).begin() as session:
            await writing(session)
            await load_demo(session)
        await engine.dispose()

    _asyncio.run(load())
    return url


async def measure(args, database_url: str, workdir: Path) -> list[dict]:
    import itertools

    from tests.telegram_emulator import Emulator, FixingProxy

    emulator = Emulator().start()
    observed = Observed()
    proxy = await FixingProxy(emulator.url, on_bot_message=observed.add).start()
    ids = itertools.count(5_000_000)
    try:
        echo = await drive("echo", ECHO, args, emulator, proxy, observed, database_url, workdir, ids)
        gridbot = await drive("gridbot", REPORT, args, emulator, proxy, observed, database_url, workdir, ids)
    finally:
        await proxy.stop()
        emulator.stop()
    return [echo, gridbot]


def package_version(name: str) -> str:
    from importlib.metadata import version

    try:
        return version(name)
    except Exception:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    serve = sub.add_parser("serve", help="(internal) run one bot until stdin closes")
    serve.add_argument("kind", choices=["gridbot", "echo"])
    serve.add_argument("--token", required=True)
    serve.add_argument("--base-url", required=True)
    serve.add_argument("--database-url", required=True)
    serve.add_argument("--poll-interval", type=float, default=0.05)
    serve.add_argument("--rate-limiter", action="store_true")
    serve.add_argument("--log", default=os.devnull)
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=os.environ.get("GRIDBOT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_tg"))
    parser.add_argument("--poll-interval", type=float, default=0.05)
    parser.add_argument("--rate-limiter", action="store_true")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)

    if args.mode == "serve":
        asyncio.run(serve_gridbot(args) if args.kind == "gridbot" else serve_echo(args))
        return 0

    from tests.telegram_emulator import emulator_unavailable

    reason = emulator_unavailable()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="bench-telegram-"))
    runs = []
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        database_url = prepare_database(args, backend, workdir)
        echo, gridbot = asyncio.run(measure(args, database_url, workdir))
        runs.append({
            "backend": backend,
            "results": [echo, gridbot],
            "ratio_gridbot_to_echo": {
                "updates_per_s": round(gridbot["updates_per_s"] / echo["updates_per_s"], 3),
                "p50": round(gridbot["step_ms"]["p50"] / echo["step_ms"]["p50"], 2),
                "p99": round(gridbot["step_ms"]["p99"] / echo["step_ms"]["p99"], 2),
            },
        })
    report = {
        "benchmark": "telegram front door vs bare python-telegram-bot echo, same emulator, same run",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "residents": args.residents,
        "steps_per_resident": len(REPORT),
        "poll_interval_s": args.poll_interval,
        "rate_limiter": args.rate_limiter,
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version(),
                    "platform": platform.platform(), "python_telegram_bot": package_version("python-telegram-bot"),
                    "emulator": "telegram-test-api 4.2.1"},
        "runs": runs,
        "logs": str(workdir),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")

    print(f"\n{args.residents} residents × {len(REPORT)} steps each, all at once; poll_interval {args.poll_interval} s"
          f"{', AIORateLimiter' if args.rate_limiter else ''}; {os.cpu_count()} CPUs\n")
    print("| bot | database | updates | wall s | updates/s | step p50 ms | step p99 ms | max ms | bot CPU ms/update |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        for row, name in zip(run["results"], ("bare PTB echo", "gridbot")):
            s = row["step_ms"]
            database = run["backend"] if name == "gridbot" else "–"
            print(f"| {name} | {database} | {row['updates']} | {row['wall_s']} | {row['updates_per_s']} | {s['p50']} | "
                  f"{s['p99']} | {s['max']} | {row['bot_cpu_ms_per_update']} |")
    for run in runs:
        ratio = run["ratio_gridbot_to_echo"]
        print(f"\ngridbot ({run['backend']}) / echo: throughput ×{ratio['updates_per_s']}, p50 ×{ratio['p50']}, p99 ×{ratio['p99']}")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
