"""The account's custom menu: 上报问题 / 我的事件 / 我的网格, and the same in Tibetan for those who chose it.

A WeChat account has one default menu; a conditional menu (`/cgi-bin/menu/addconditional`)
is shown to followers with a user tag. The Tibetan menu is matched to the tag that the
front door gives to followers who chose Tibetan (and takes away when they choose Chinese).
Top-level names may have 16 bytes (about 5 Tibetan letters): a longer name becomes the only
sub-item (60 bytes) of a top-level entry named with its icon and Chinese name, e.g. 📝上报问题.
"""

from __future__ import annotations

from typing import Any

from conversations.i18n import N_, translate
from storage.db import writing
from storage.models import WeChatAccount

from .api import WeChatAPI

ENTRIES = [  # (icon, label, button data the dialogs know)
    ("📝", N_("Report a problem"), "menu:report"),
    ("📋", N_("My cases"), "menu:cases"),
    ("🏘", N_("My grid"), "menu:grid"),
]
TOP_BYTES, SUB_BYTES = 16, 60
LANGUAGE_TAG = "བོད་ཡིག"


def _fit(text: str, limit: int) -> str:
    while len(text.encode("utf-8")) > limit:
        text = text[:-1]
    return text


def menu_buttons(language: str) -> list[dict[str, Any]]:
    """The menu in `language`; a name too long for the top level (Tibetan) goes one level down, under
    the icon and the Chinese name (bilingual, and still short)."""
    buttons = []
    for icon, msgid, key in ENTRIES:
        name = translate(language, msgid)
        if len(name.encode("utf-8")) <= TOP_BYTES:
            buttons.append({"type": "click", "name": name, "key": key})
        else:
            top = _fit(icon + translate("zh", msgid), TOP_BYTES)
            buttons.append({"name": top, "sub_button": [{"type": "click", "name": _fit(name, SUB_BYTES), "key": key}]})
    return buttons


async def language_tag(api: WeChatAPI) -> int:
    """The id of the user tag for Tibetan, created when missing."""
    tags = (await api.call("/cgi-bin/tags/get", method="GET")).get("tags", [])
    for tag in tags:
        if tag.get("name") == LANGUAGE_TAG:
            return int(tag["id"])
    created = await api.call("/cgi-bin/tags/create", {"tag": {"name": LANGUAGE_TAG}})
    return int(created["tag"]["id"])


async def install(api: WeChatAPI) -> dict[str, Any]:
    """Replace the account's menus: the Chinese default, the Tibetan one for the language tag."""
    tag = await language_tag(api)
    async with api.sessionmaker.begin() as session:
        await writing(session)
        row = await session.get(WeChatAccount, api.config.app_id)
        if row is None:
            row = WeChatAccount(app_id=api.config.app_id)
            session.add(row)
        row.language_tag_id = tag
    await api.call("/cgi-bin/menu/delete", method="GET")
    default = {"button": menu_buttons("zh")}
    await api.call("/cgi-bin/menu/create", default)
    tibetan = {"button": menu_buttons("bo"), "matchrule": {"tag_id": str(tag)}}
    await api.call("/cgi-bin/menu/addconditional", tibetan)
    return {"tag_id": tag, "default": default, "tibetan": tibetan}
