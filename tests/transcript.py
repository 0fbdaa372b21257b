"""Dialog tests as transcripts: what the person sends, what the bot answers, in either language.

An expected answer is written as the English message id (what the catalogs translate);
the check renders it in the person's language and looks for its fixed parts in the reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conversations.engine import Engine, Sender
from conversations.i18n import PLACEHOLDER, translate
from conversations.protocol import Inbound, Reply


_ALLOWED_LATIN = re.compile(r"LS-\d{8}-\d{4,}|/[a-z]+|[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}|https?://\S+")


def latin_leftovers(text: str) -> list[str]:
    """Latin-script words in a reply, apart from case numbers, commands and links: an untranslated fallback."""
    return re.findall(r"[A-Za-z]{2,}", _ALLOWED_LATIN.sub("", text))


def fixed_parts(language: str, msgid: str) -> list[str]:
    """The translated message split at its placeholders: the parts a reply must contain."""
    return [part.strip() for part in PLACEHOLDER.split(translate(language, msgid))[::2] if part.strip()]


def says(language: str, replies: list[Reply], msgid: str, **params: Any) -> bool:
    text = "\n".join(r.text for r in replies)
    if params:
        return translate(language, msgid, **params) in text
    return all(part in text for part in fixed_parts(language, msgid))


@dataclass
class Press:
    data: str


@dataclass
class Location:
    latitude: float
    longitude: float


@dataclass
class Photo:
    file_id: str
    error: str | None = None  # the adapter refused the file: too_large, not_media


@dataclass
class Voice:
    file_id: str
    duration: int = 5
    error: str | None = None  # too_large, too_long, not_media


@dataclass
class Contact:
    phone: str


class Chat:
    """One person talking to the engine through the platform-neutral protocol."""

    def __init__(self, engine: Engine, user: str, language: str, *, platform: str = "web", language_code: str | None = None):
        self.engine = engine
        self.sender = Sender(platform=platform, external_id=user, chat_id=user, language_code=language_code)
        self.language = language
        self.replies: list[Reply] = []

    async def send(self, what, update_id=None) -> list[Reply]:
        if isinstance(what, Press):
            last_buttons = [d for r in self.replies for d in r.button_data()]
            # Buttons of these kinds also stay usable on older messages (menus, notices, case cards).
            from_older = what.data.startswith(("menu:", "lang:", "case:", "rate:", "staff:", "act:", "resume:", "add:"))
            assert what.data in last_buttons or from_older, (
                f"no button {what.data!r} on screen: {last_buttons}"
            )
            message = Inbound.press(what.data)
        elif isinstance(what, Location):
            message = Inbound.at(what.latitude, what.longitude)
        elif isinstance(what, Photo):
            message = Inbound("photo", photo_file_id=what.file_id, photo_size=1000, media_error=what.error)
        elif isinstance(what, Voice):
            message = Inbound("voice", photo_file_id=what.file_id, photo_size=4000, duration=what.duration,
                              content_type="audio/ogg", media_error=what.error)
        elif isinstance(what, Contact):
            message = Inbound("contact", phone=what.phone)
        else:
            message = Inbound.of_text(what)
        self.replies = await self.engine.handle(self.sender, message, update_id=update_id)
        return self.replies

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    def buttons(self) -> list[str]:
        return [d for r in self.replies for d in r.button_data()]

    async def run(self, transcript: list[tuple[Any, Any]]) -> None:
        """Each line: (what the person sends, what the bot answers: a msgid, a (msgid, params) pair,
        a list of those, or a callable given the replies)."""
        for number, (sent, expected) in enumerate(transcript, 1):
            await self.send(sent)
            if self.language == "bo":
                leftovers = latin_leftovers(self.text)
                assert not leftovers, f"line {number}: Latin-script fallback in a Tibetan reply: {leftovers}\n{self.text}"
            for item in expected if isinstance(expected, list) else [expected]:
                if callable(item):
                    ok = item(self)
                elif isinstance(item, tuple):
                    ok = says(self.language, self.replies, item[0], **item[1])
                else:
                    ok = says(self.language, self.replies, item)
                assert ok, f"line {number}: sent {sent!r}, expected {item!r}, got:\n{self.text}\nbuttons: {self.buttons()}"
