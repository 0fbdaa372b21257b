"""What a dialog step gets: the person, their language, the open dialog's state and answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from storage.models import DialogState, Person

from . import i18n
from .protocol import Button, Inbound, Reply


@dataclass
class Context:
    session: AsyncSession
    person: Person
    dialog_state: DialogState
    now: datetime
    platform: str
    settings: dict[str, Any] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)
    registry: Any = None  # the engine's Router: dialogs and views by name (see conversations.router)

    @property
    def language(self) -> str:
        return self.person.language

    @property
    def data(self) -> dict[str, Any]:
        return self.dialog_state.data

    @property
    def state(self) -> str | None:
        return self.dialog_state.state

    def t(self, msgid: str, **params) -> str:
        """Translate into the person's language."""
        return i18n.translate(self.language, msgid, **params)

    def say(self, text: str, buttons: list[list[Button]] | None = None, **options) -> Reply:
        reply = Reply(text=text, buttons=buttons or [], **options)
        if reply.request_location:
            reply.location_label = self.t("📍 Share my location")
        if reply.request_contact:
            reply.contact_label = self.t("📞 Share my phone number")
        self.replies.append(reply)
        return reply

    def button(self, msgid: str, data: str, **params) -> Button:
        return Button(self.t(msgid, **params), data)

    def photo_answer(self, message: Inbound) -> dict[str, Any]:
        """A photo or voice message as a dialog keeps it (and `storage.cases.Photo` takes it)."""
        answer = {"platform": self.platform, "platform_file_id": message.photo_file_id,
                  "stored_path": message.photo_path, "sha256": message.photo_sha256, "size": message.photo_size}
        if message.kind == "voice":
            answer.update(kind="voice", duration_seconds=message.duration)
        if message.content_type:
            answer["content_type"] = message.content_type
        if message.public_path:
            answer["public_path"] = message.public_path
        return answer

    def time(self, moment: datetime) -> str:
        return i18n.local_time(self.language, moment)

    def dialog_named(self, name: str | None = None):
        """A dialog by name (the open one when no name is given), for handing over to it."""
        name = name or self.dialog_state.dialog
        if self.registry is None or name not in self.registry.dialogs:
            raise LookupError(f"no dialog {name!r} is registered")
        return self.registry.dialogs[name]

    async def begin_dialog(self, name: str, **data: Any) -> None:
        """Hand over to another dialog by name."""
        await self.dialog_named(name).begin(self, **data)

    async def show(self, view: str, **params: Any) -> Any:
        """Show what another feature shows (`menu`, `case`, `desk` …), by name."""
        if self.registry is None or view not in self.registry.views:
            raise LookupError(f"no view {view!r} is registered")
        return await self.registry.views[view](self, **params)

    def touch(self) -> None:
        """Mark the dialog's answers as changed so they are written back (JSON is changed in place)."""
        flag_modified(self.dialog_state, "data")
