"""`gridbot run`: one aiohttp server (web chat, APIs, Telegram webhook, WeChat), Telegram, and the dispatcher."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from aiohttp import web

from storage import retention, updates
from storage.db import writing
from storage.supervision import sweep

from .dispatcher import Dispatcher
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger("gridbot.server")


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile (the periodic jobs' rhythm)."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass


async def close_idle_dialogs(runtime: Runtime, dispatcher: Dispatcher, stop: asyncio.Event, every: float = 60) -> None:
    """Once a minute: dialogs left unanswered are closed and the person is told (their draft is kept)."""
    while not stop.is_set():
        try:
            for person_id, replies in await runtime.engine.close_idle_dialogs():
                await dispatcher.send_to_person(person_id, replies)
        except Exception:
            log.exception("closing idle dialogs failed")
        await pause(stop, every)


async def forget_old_updates(runtime: Runtime, stop: asyncio.Event, every: float = 3600) -> None:
    """Once an hour: processed updates older than the retention period are deleted (a platform never
    redelivers that late; Telegram may reuse ids after a week of silence)."""
    retention = timedelta(days=runtime.settings.update_retention_days)
    while not stop.is_set():
        try:
            async with runtime.sessionmaker.begin() as session:
                await writing(session)
                pruned = await updates.prune(session, retention)
            if pruned:
                log.info("forgot %d processed updates older than %s", pruned, retention)
        except Exception:
            log.exception("forgetting old updates failed")
        await pause(stop, every)


async def supervise(runtime: Runtime, stop: asyncio.Event, every: float = 60) -> None:
    """Every `every` seconds: time limits act (reminders, 催办, escalation, overdue checks).

    A database outage is logged once, then the sweep waits and resumes; several instances share
    the work through row locks, so each milestone fires once.
    """
    failing = False
    while not stop.is_set():
        try:
            await sweep(runtime.sessionmaker)
            if failing:
                log.warning("supervision sweep works again")
            failing = False
        except Exception as exc:
            if not failing:
                log.error("supervision sweep failed (%s); retrying every %s s", type(exc).__name__, every)
            failing = True
        await pause(stop, every)


async def retention_daily(runtime: Runtime, stop: asyncio.Event, every: float = 3600) -> None:
    """Once a day, across all instances: anonymise the cases past GRIDBOT_RETENTION_DAYS (storage.retention)."""

    settings = runtime.settings
    while not stop.is_set():
        try:
            async with runtime.sessionmaker.begin() as session:
                await writing(session)
                claimed = await retention.claim_daily(session, "retention")
            if claimed:
                total: dict[str, int] = {}
                while not stop.is_set():
                    async with runtime.sessionmaker.begin() as session:
                        await writing(session)
                        removed = await retention.anonymise_expired(
                            session, retention_days=settings.retention_days, attachments_dir=settings.attachments_dir)
                    for key, value in removed.as_dict().items():
                        total[key] = total.get(key, 0) + value
                    if removed.cases < retention.BATCH:
                        break
                async with runtime.sessionmaker.begin() as session:
                    await writing(session)
                    await retention.finish_daily(session, "retention", total)
                log.info("retention: %s", total)
        except Exception:
            log.exception("the retention job failed")
        await pause(stop, every)


async def serve(settings: Settings, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    from .web.app import create_app

    runtime = Runtime.build(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass

    app = create_app(runtime)
    telegram = None
    if settings.telegram_token:
        from .telegram.adapter import TelegramFrontDoor

        telegram = TelegramFrontDoor(runtime)
        await telegram.start(app)
    wechat = None
    from .wechat.config import WeChatConfig

    wechat_config = WeChatConfig.from_env()
    if wechat_config is not None:
        from .wechat.adapter import WeChatFrontDoor

        wechat = WeChatFrontDoor(runtime, wechat_config)
        await wechat.start(app)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    log.info("serving on http://%s:%s/", settings.host, settings.port)
    print(f"gridbot is running: open http://{settings.host}:{settings.port}/ (Ctrl+C to stop)", flush=True)

    tasks = [asyncio.create_task(retention_daily(runtime, stop), name="retention")]
    if settings.dispatcher:
        dispatcher = Dispatcher(runtime.sessionmaker, runtime.channels, count=runtime.count)
        runtime.dispatcher = dispatcher
        tasks.append(asyncio.create_task(dispatcher.run(stop), name="dispatcher"))
        tasks.append(asyncio.create_task(close_idle_dialogs(runtime, dispatcher, stop), name="idle dialogs"))
        from .bulletin_delivery import BulletinCourier

        courier = BulletinCourier(runtime.sessionmaker, dispatcher.send_to_person, public_url=settings.public_url or
                                  f"http://{settings.host}:{settings.port}")
        tasks.append(asyncio.create_task(courier.run(stop), name="bulletins"))
    tasks.append(asyncio.create_task(forget_old_updates(runtime, stop), name="old updates"))
    if settings.sweep_seconds > 0:
        tasks.append(asyncio.create_task(supervise(runtime, stop, settings.sweep_seconds), name="supervision"))
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        # Each step on its own, so that one that hangs or fails does not skip the others.
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (asyncio.TimeoutError, Exception):
                log.warning("%s did not stop cleanly", task.get_name())
        if telegram is not None:
            try:
                await telegram.stop()
            except Exception:
                log.exception("telegram did not stop cleanly")
        if wechat is not None:
            try:
                await wechat.stop()
            except Exception:
                log.exception("wechat did not stop cleanly")
        await runner.cleanup()
        await runtime.close()
