"""From platform-neutral `Reply` objects to WeChat customer-service messages.

WeChat has no inline keyboards: a reply with buttons becomes a menu message
(`msgmenu`): the reply's text as `head_content`, one numbered option per button
(tapping it sends the option's id back as `bizmsgmenuid`), and a line saying that
typing the number works too. "Share my location" becomes a line explaining how
to send a location in WeChat (＋ → Location); "share my phone number" a line
asking to type it. Long texts are split at natural boundaries (WeChat takes
about 2,048 bytes per text); photos of the case go first, as image messages,
when they came in through WeChat (their media ids).
"""

from __future__ import annotations

from typing import Any, Sequence

from conversations import i18n
from conversations.i18n import N_
from conversations.protocol import Reply

from ..telegram.render import split_text
from .followers import option_id

MAX_CHARS = 600  # ≤ 2,048 bytes even when every character takes 3 bytes (Chinese, Tibetan)
MAX_MENU_OPTIONS = 10

LOCATION_HINT = N_("To send your location: tap ＋ beside the input box, choose Location, then Send.")
CONTACT_HINT = N_("To give your phone number, type it as a message.")
MENU_HINT = N_("Tap an option, or type its number.")


def options_of(reply: Reply) -> list[str]:
    """The button data of a reply, in the order they are shown."""
    return [b.data for row in reply.buttons for b in row]


def render(openid: str, reply: Reply, language: str, serial: int | None = None) -> list[dict[str, Any]]:
    """The custom-send payloads for one reply; `serial` numbers its options (see followers.py)."""
    messages: list[dict[str, Any]] = []
    for media_id in reply.photo_file_ids:
        messages.append({"touser": openid, "msgtype": "image", "image": {"media_id": media_id}})
    text = reply.text or "…"
    hints = []
    if reply.request_location:
        hints.append(i18n.translate(language, LOCATION_HINT))
    if reply.request_contact:
        hints.append(i18n.translate(language, CONTACT_HINT))
    if hints:
        text = text + "\n\n" + "\n".join(hints)
    labels = [b.label for row in reply.buttons for b in row]
    parts = split_text(text, MAX_CHARS)
    if not labels or serial is None:
        messages.extend({"touser": openid, "msgtype": "text", "text": {"content": part}} for part in parts)
        return messages
    for part in parts[:-1]:
        messages.append({"touser": openid, "msgtype": "text", "text": {"content": part}})
    options = [{"id": str(option_id(serial, n)), "content": f"{i18n.number(language, n)}. {label}"}
               for n, label in enumerate(labels, start=1)]
    head = parts[-1]
    hint = i18n.translate(language, MENU_HINT)
    if {"lang:zh", "lang:bo"} <= set(options_of(reply)):  # the language choice: not chosen yet, say it in both
        hint = "\n".join(i18n.translate(code, MENU_HINT) for code in i18n.LANGUAGES)
    # One menu message holds a few options: the rest follow in further menu messages.
    for start in range(0, len(options), MAX_MENU_OPTIONS):
        chunk = options[start:start + MAX_MENU_OPTIONS]
        last = start + MAX_MENU_OPTIONS >= len(options)
        messages.append({"touser": openid, "msgtype": "msgmenu", "msgmenu": {
            "head_content": head, "list": chunk,
            "tail_content": hint if last else "",
        }})
        head = "…"
    return messages


def render_all(openid: str, replies: Sequence[Reply], language: str, serials: Sequence[int]) -> list[dict[str, Any]]:
    """Payloads for several replies; `serials` has one entry per reply with buttons, in order."""
    out: list[dict[str, Any]] = []
    it = iter(serials)
    for reply in replies:
        out.extend(render(openid, reply, language, next(it) if reply.buttons else None))
    return out
