"""What the adapter keeps per follower in the database: the 48-hour window, subscription, numbered menus.

Options are numbered per message; WeChat sends back the id of a tapped option
(`bizmsgmenuid`), and a person may also type the option's number. Ids are
`serial * 100 + n`, so a tap on an older message still means what it said; a
typed number means an option of the newest message with options.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import writing
from storage.models import Identity, WeChatFollower

CUSTOMER_SERVICE_WINDOW = timedelta(hours=48)
MENUS_KEPT = 8
MAX_OPTIONS = 99

PLATFORM = "wechat"


def option_id(serial: int, number: int) -> int:
    return serial * 100 + number


async def _follower(session: AsyncSession, app_id: str, openid: str, *, create: bool) -> WeChatFollower | None:
    row = await session.get(WeChatFollower, (app_id, openid), populate_existing=True)
    if row is None and create:
        try:
            async with session.begin_nested():
                row = WeChatFollower(app_id=app_id, openid=openid, subscribed=True, menu_serial=0, menus=[])
                session.add(row)
                await session.flush()
        except IntegrityError:
            row = await session.get(WeChatFollower, (app_id, openid), populate_existing=True)
    return row


class Followers:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], app_id: str):
        self.sessionmaker = sessionmaker
        self.app_id = app_id

    async def get(self, openid: str) -> WeChatFollower | None:
        async with self.sessionmaker() as session:
            return await session.get(WeChatFollower, (self.app_id, openid))

    async def wrote(self, openid: str, at: datetime) -> None:
        """They sent us something: the 48-hour window of customer-service messages opens again."""
        async with self.sessionmaker.begin() as session:
            await writing(session)
            row = await _follower(session, self.app_id, openid, create=True)
            if row.last_message_at is None or row.last_message_at < at:
                row.last_message_at = at
            row.subscribed = True

    async def unsubscribed(self, openid: str, at: datetime) -> None:
        """They unfollowed the account: nothing more is sent until they follow again (Identity.blocked_at)."""
        async with self.sessionmaker.begin() as session:
            await writing(session)
            row = await _follower(session, self.app_id, openid, create=True)
            row.subscribed = False
            identity = await session.scalar(
                select(Identity).where(Identity.platform == PLATFORM, Identity.external_id == openid)
            )
            if identity is not None:
                identity.blocked_at = at

    async def in_window(self, openid: str, now: datetime) -> bool:
        row = await self.get(openid)
        return bool(row and row.subscribed and row.last_message_at and now - row.last_message_at < CUSTOMER_SERVICE_WINDOW)

    async def number_menus(self, openid: str, menus: list[list[str]]) -> list[int]:
        """Give each message's options (their button data, in order) a serial; returns the serials."""
        if not menus:
            return []
        async with self.sessionmaker.begin() as session:
            await writing(session)
            row = await _follower(session, self.app_id, openid, create=True)
            kept = list(row.menus or [])
            serials = []
            for options in menus:
                row.menu_serial = (row.menu_serial or 0) + 1
                serials.append(row.menu_serial)
                kept.append([row.menu_serial, list(options)[:MAX_OPTIONS]])
            row.menus = kept[-MENUS_KEPT:]
        return serials

    async def option(self, openid: str, *, menu_id: int | None = None, typed: int | None = None) -> str | None:
        """The button data behind a tapped option id, or behind a number typed for the newest options."""
        row = await self.get(openid)
        if row is None or not row.menus:
            return None
        if menu_id is not None:
            serial, number = divmod(menu_id, 100)
            for kept_serial, options in row.menus:
                if kept_serial == serial and 1 <= number <= len(options):
                    return options[number - 1]
            return None
        if typed is not None:
            options = row.menus[-1][1]
            if 1 <= typed <= len(options):
                return options[typed - 1]
        return None

    async def set_menu_language(self, openid: str, language: str) -> None:
        async with self.sessionmaker.begin() as session:
            await writing(session)
            row = await _follower(session, self.app_id, openid, create=True)
            row.menu_language = language
