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


_DIGITS_ALLOWED_IN_BO = re.compile(
    r"\b11[09]\b|\b120\b|LS-\d{8}-\d{4,}|[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}|https?://\S+|\+?\d[\d* \-]{5,}\d|[0-9]{4}-[A-Z0-9-]+"
    # What a person typed in Chinese, shown as typed (an address such as 3号楼东侧).
    r"|[0-9]+(?=[\u4e00-\u9fff])|(?<=[\u4e00-\u9fff])[0-9]+")


def ascii_digits_in_tibetan(text: str) -> list[str]:
    """ASCII digits in a Tibetan reply, apart from case numbers, phone numbers, codes and links (སྐར་མ་30)."""
    return re.findall(r"[0-9]+", _DIGITS_ALLOWED_IN_BO.sub("", text))


def ascii_colons_in_chinese(text: str) -> list[str]:
    """ASCII colons in a Chinese reply, apart from times (16:05) and links: labels take ：."""
    return re.findall(r".{0,6}(?<![0-9]):(?![0-9]).{0,6}", re.sub(r"https?://\S+", "", text))


def glued_to_tibetan(text: str) -> list[str]:
    """A Latin word or number glued to Tibetan letters (a placeholder filled without a tsheg or space)."""
    return re.findall(r"[\u0f40-\u0fbc][A-Za-z0-9]+|[A-Za-z0-9]+[\u0f40-\u0fbc]", text)


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
class PressOld:
    """A button of an older message, pressed again (a person scrolling up)."""

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
        elif isinstance(what, PressOld):
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
                digits = ascii_digits_in_tibetan(self.text)
                assert not digits, f"line {number}: ASCII digits in a Tibetan reply: {digits}\n{self.text}"
                glued = glued_to_tibetan(self.text)
                assert not glued, f"line {number}: glued to Tibetan letters: {glued}\n{self.text}"
            if self.language == "zh":
                colons = ascii_colons_in_chinese(self.text)
                assert not colons, f"line {number}: ASCII colon in a Chinese reply: {colons}\n{self.text}"
            for item in expected if isinstance(expected, list) else [expected]:
                if callable(item):
                    ok = item(self)
                elif isinstance(item, tuple):
                    ok = says(self.language, self.replies, item[0], **item[1])
                else:
                    ok = says(self.language, self.replies, item)
                assert ok, f"line {number}: sent {sent!r}, expected {item!r}, got:\n{self.text}\nbuttons: {self.buttons()}"
