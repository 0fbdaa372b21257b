"""The dispatcher's way out to WeChat: one notice to one follower, by the first route WeChat accepts.

1. Customer-service message (`/cgi-bin/message/custom/send`), while the person wrote to the
   account in the last 48 hours.
2. Template message (`/cgi-bin/message/template/send`, WECHAT_TEMPLATE_ID): case number,
   step, time, and a link to the case (WECHAT_NOTICE_URL).
3. Subscribe message (`/cgi-bin/message/subscribe/bizsend`, WECHAT_SUBSCRIBE_TEMPLATE_ID).

A route WeChat refuses for this person (45015 out of the window, 45047 too many messages,
43101 no subscription, a template error) passes the notice to the next route; when none
is left the notice is given up with the reasons (`Undeliverable`), never retried in a loop.
43004 (not following the account) or 40003 (unknown openid) is `Blocked`: the dispatcher
tries the person's other platforms. The quota pause (45009) is `RetryLater`; timeouts
and WeChat's "system busy" propagate and are retried with backoff.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Callable

from sqlalchemy import select

from conversations.protocol import Reply
from storage.models import Identity, Person
from storage.timeutil import LOCAL_TZ, utcnow

from ..channels import Blocked, RetryLater, Undeliverable
from . import render
from .api import QuotaExhausted, WeChatAPI, WeChatError
from .config import WeChatConfig
from .followers import PLATFORM, Followers

NOT_FOLLOWING = {43004, 40003}
NEXT_ROUTE = {45015, 45047, 43101, 40037, 47003, 41028, 43019, 40036}
CASE_NUMBER = re.compile(r"LS-\d{8}-\d{4,}")
THING_CHARS = 20  # WeChat cuts "thing" fields of templates at 20 characters


def case_number(reply: Reply) -> str:
    for data in reply.button_data():
        if data.startswith("case:"):
            return data.removeprefix("case:")
    found = CASE_NUMBER.search(reply.text or "")
    return found.group(0) if found else ""


def short(text: str, limit: int = THING_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WeChatChannel:
    """`bot.channels.Channel` for WeChat followers (chat id = openid)."""

    platform = PLATFORM

    def __init__(self, api: WeChatAPI, followers: Followers, config: WeChatConfig,
                 clock: Callable[[], datetime] = utcnow):
        self.api = api
        self.followers = followers
        self.config = config
        self.clock = clock
        self.routes_used: Counter[str] = Counter()  # notices sent per route, by this process
        self.last_route: str | None = None

    async def send(self, chat_id: str, reply: Reply) -> None:
        now = self.clock()
        until = await self.api.paused_until()
        if until is not None:
            raise RetryLater(max((until - now).total_seconds(), 1.0))
        routes = []
        if await self.followers.in_window(chat_id, now):
            routes.append("custom")
        if case_number(reply):  # template and subscribe messages are about a case
            if self.config.template_id:
                routes.append("template")
            if self.config.subscribe_template_id:
                routes.append("subscribe")
        refused = []
        for route in routes:
            try:
                await getattr(self, f"_{route}")(chat_id, reply, now)
            except QuotaExhausted as exc:
                raise RetryLater(max((exc.until - now).total_seconds(), 1.0)) from exc
            except WeChatError as exc:
                if exc.code in NOT_FOLLOWING:
                    raise Blocked(str(exc)) from exc
                if exc.code in NEXT_ROUTE:
                    refused.append(f"{route} refused ({exc.code})")
                    continue
                raise
            self.routes_used[route] += 1
            self.last_route = route
            return
        if not routes:
            raise Undeliverable("wechat: outside the 48-hour window and no template or subscribe message configured")
        raise Undeliverable("wechat: " + ", ".join(refused))

    async def _language(self, openid: str) -> str:
        async with self.api.sessionmaker() as session:
            language = await session.scalar(
                select(Person.language).join(Identity, Identity.person_id == Person.id)
                .where(Identity.platform == PLATFORM, Identity.external_id == openid)
            )
        return language or "zh"

    async def _custom(self, openid: str, reply: Reply, now: datetime) -> None:
        language = await self._language(openid)
        plain = Reply(text=reply.text, buttons=reply.buttons, photo_file_ids=reply.photo_file_ids)
        serials = await self.followers.number_menus(openid, [render.options_of(plain)] if plain.buttons else [])
        for payload in render.render_all(openid, [plain], language, serials):
            try:
                await self.api.send_custom(payload)
            except WeChatError as exc:
                # A case photo whose media id WeChat no longer keeps (3 days) must not hold the notice back.
                if payload["msgtype"] != "image" or exc.code in NOT_FOLLOWING | NEXT_ROUTE or exc.code == -1:
                    raise

    def _fields(self, reply: Reply, now: datetime) -> tuple[str, dict]:
        number = case_number(reply)
        step = (reply.text or "").replace(number, "") if number else (reply.text or "")
        values = {"number": number or "-", "step": short(step),
                  "time": now.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")}  # WeChat's time type
        data = {self.config.template_fields[k]: {"value": v} for k, v in values.items() if k in self.config.template_fields}
        url = self.config.notice_url.replace("{number}", number) if self.config.notice_url and number else None
        return url, data

    async def _template(self, openid: str, reply: Reply, now: datetime) -> None:
        url, data = self._fields(reply, now)
        payload = {"touser": openid, "template_id": self.config.template_id, "data": data}
        if url:
            payload["url"] = url
        await self.api.send_template(payload)

    async def _subscribe(self, openid: str, reply: Reply, now: datetime) -> None:
        url, data = self._fields(reply, now)
        payload = {"touser": openid, "template_id": self.config.subscribe_template_id, "data": data}
        if url:
            payload["page"] = url
        await self.api.send_subscribe(payload)
