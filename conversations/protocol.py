"""The small protocol between dialogs and platform adapters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

InboundKind = Literal["text", "button", "location", "photo", "voice", "contact", "command"]


@dataclass
class Inbound:
    """One thing a person sent: text, a button press, a location, a photo, a voice note, a contact, a command.

    A photo or voice note arrives stored already (`storage.media.store_media`); `media_error` carries the
    reason the adapter refused the file (too_large, not_media, too_long), for the dialog to explain."""

    kind: InboundKind
    text: str = ""
    data: str = ""  # button payload
    command: str = ""  # without the slash, e.g. "start"
    argument: str = ""  # text after the command
    latitude: float | None = None
    longitude: float | None = None
    photo_file_id: str | None = None
    photo_path: str | None = None
    photo_sha256: str | None = None
    photo_size: int | None = None
    phone: str | None = None
    content_type: str | None = None
    duration: int | None = None  # seconds, voice notes
    public_path: str | None = None  # the photo without EXIF
    media_error: str | None = None

    @classmethod
    def of_text(cls, text: str) -> Inbound:
        """Text as typed; a leading slash makes it a command."""
        if text.startswith("/") and len(text) > 1:
            head, _, rest = text[1:].partition(" ")
            return cls("command", text=text, command=head.split("@")[0].lower(), argument=rest.strip())
        return cls("text", text=text)

    @classmethod
    def stored(cls, kind: Literal["photo", "voice"], stored, file_id: str | None = None) -> Inbound:
        """A photo or voice note kept by `storage.media.store_media` (a `StoredMedia`), as the dialogs take it."""
        return cls(kind, photo_file_id=file_id, photo_path=stored.path, photo_sha256=stored.sha256,
                   photo_size=stored.size, content_type=stored.content_type, duration=stored.duration_seconds,
                   public_path=stored.public_path)

    @classmethod
    def refused(cls, kind: Literal["photo", "voice"], code: str, file_id: str | None = None) -> Inbound:
        """A file the adapter did not keep (`storage.media.MediaRefused.code`): the dialog says why."""
        return cls(kind, photo_file_id=file_id, media_error=code)

    @classmethod
    def press(cls, data: str) -> Inbound:
        return cls("button", data=data)

    @classmethod
    def at(cls, latitude: float, longitude: float) -> Inbound:
        return cls("location", latitude=latitude, longitude=longitude)


@dataclass
class Button:
    label: str
    data: str


@dataclass
class Reply:
    """One message to show: text, optional rows of buttons, optionally a request for location/contact."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    request_location: bool = False
    request_contact: bool = False
    location_label: str = ""  # label of the platform's "share location" button, translated
    contact_label: str = ""
    photo_file_ids: list[str] = field(default_factory=list)
    # Evidence to show with the text: {"attachment": id, "kind": "photo"|"voice", "content_type",
    # "platform", "file_id", "path", "variant"}; each adapter shows it its own way (Telegram sends the
    # photo or voice again, the web chat a short-lived signed link).
    media: list[dict] = field(default_factory=list)
    location: list[float] | None = None  # [latitude, longitude]: a place to navigate to

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Reply:
        rows = [[Button(**b) for b in row] for row in data.get("buttons", [])]
        return cls(**{**data, "buttons": rows})

    def button_data(self) -> list[str]:
        return [b.data for row in self.buttons for b in row]

    def button_labels(self) -> list[str]:
        return [b.label for row in self.buttons for b in row]
