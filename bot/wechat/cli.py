"""`gridbot wechat menu`: install the account's custom menu (run once per deployment, and after changes)."""

from __future__ import annotations

import asyncio
import json


def cmd_wechat(args) -> int:
    from .config import WeChatConfig

    config = WeChatConfig.from_env()
    if config is None:
        print("WeChat is not configured: set WECHAT_APP_ID, WECHAT_APP_SECRET and WECHAT_TOKEN")
        return 2
    result = asyncio.run(_install(config))
    print("custom menu installed (Tibetan menu for tag %s):" % result["tag_id"])
    print(json.dumps({"default": result["default"], "tibetan": result["tibetan"]}, ensure_ascii=False, indent=1))
    return 0


async def _install(config):
    import aiohttp

    from storage import migrate
    from storage.db import make_engine, make_sessionmaker

    from .api import WeChatAPI
    from .menu import install

    await asyncio.to_thread(migrate.upgrade)
    engine = make_engine()
    try:
        async with aiohttp.ClientSession() as http:
            return await install(WeChatAPI(config, make_sessionmaker(engine), http))
    finally:
        await engine.dispose()


def add_commands(sub) -> None:
    wechat = sub.add_parser("wechat", help="the WeChat Official Account (custom menu)")
    wechat.add_argument("action", choices=["menu"])
    wechat.set_defaults(func=cmd_wechat)


COMMANDS = [add_commands]
