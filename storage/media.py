"""Evidence files (photos and voice notes): checked, stored once by content, served by signed links.

`store_media` is the one way in for every platform (web upload, Telegram download, WeChat):
it checks that the bytes are what they claim (a real image or a real audio file, not just a
name), enforces the size and duration limits, stores the file under its SHA-256, and for a
photo carrying EXIF data also keeps a copy without it (no GPS position for readers who are not
staff). `signed_query` / `check_signature` make and check short-lived links to one stored file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import os
import secrets
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from .models import AppSecret

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_VOICE_BYTES = 5 * 1024 * 1024
MAX_VOICE_SECONDS = 180
LINK_SECONDS = 15 * 60  # how long a signed media link works
SECRET_NAME = "media_links"

IMAGE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif", "heic": "image/heic"}
AUDIO_TYPES = {"ogg": "audio/ogg", "webm": "audio/webm", "m4a": "audio/mp4", "mp3": "audio/mpeg", "amr": "audio/amr"}
CONTENT_TYPES = {**IMAGE_TYPES, **AUDIO_TYPES}


class MediaRefused(ValueError):
    """The file is not stored; `code` says why: too_large, not_media, too_long, empty."""

    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass
class StoredMedia:
    kind: str  # photo | voice
    path: str  # relative to the attachments directory
    sha256: str
    size: int
    content_type: str
    duration_seconds: int | None = None
    public_path: str | None = None  # the copy without EXIF, when the original had any


def image_type(head: bytes) -> str | None:
    """The image format from the file's first bytes (a sender's content type is not trusted)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heis", b"hevc"):
        return "heic"
    return None


def audio_type(head: bytes) -> str | None:
    """The audio container from the first bytes: Ogg (Telegram, Opus), WebM (browsers), MP4/M4A, MP3, AMR (WeChat)."""
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head[4:8] == b"ftyp" and head[8:11] in (b"M4A", b"mp4", b"iso"):
        return "m4a"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head.startswith(b"#!AMR"):
        return "amr"
    return None


def ogg_duration(data: bytes) -> float | None:
    """Seconds of an Ogg Opus/Vorbis stream, from the granule position of its last page."""
    at = data.rfind(b"OggS")
    if at < 0 or len(data) < at + 14:
        return None
    granule = struct.unpack_from("<q", data, at + 6)[0]
    if granule < 0:
        return None
    rate = 48000  # Opus always counts at 48 kHz
    vorbis = data.find(b"\x01vorbis")
    if vorbis >= 0 and len(data) >= vorbis + 16:
        rate = struct.unpack_from("<I", data, vorbis + 12)[0] or 48000
    return granule / rate


def _check_image(data: bytes, extension: str) -> bytes | None:
    """Decode the image (refuses what only looks like one); returns a copy without EXIF when it had any."""
    if extension == "heic":
        return None  # Pillow cannot decode HEIC without a plug-in: served to staff only, as sent
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if not image.getexif() and "exif" not in image.info:
                return None
            clean = image.copy()  # pixels only: saved without an exif= argument, no EXIF is written
            clean.info.pop("exif", None)
            out = io.BytesIO()
            save_as = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}[extension]
            clean.save(out, save_as, **({"quality": 90} if save_as in ("JPEG", "WEBP") else {}))
            return out.getvalue()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaRefused("not_media", "the file is not a readable image") from exc


def check_media(data: bytes, kind: str, *, duration_seconds: float | None = None) -> tuple[str, int | None, bytes | None]:
    """(extension, duration in seconds, EXIF-free copy or None), or MediaRefused."""
    if not data:
        raise MediaRefused("empty", "the file is empty")
    if kind == "photo":
        if len(data) > MAX_PHOTO_BYTES:
            raise MediaRefused("too_large", "photo too large", limit=MAX_PHOTO_BYTES)
        extension = image_type(data[:32])
        if extension is None:
            raise MediaRefused("not_media", "the file is not a JPEG, PNG, WebP, GIF or HEIC image")
        return extension, None, _check_image(data, extension)
    if kind == "voice":
        if len(data) > MAX_VOICE_BYTES:
            raise MediaRefused("too_large", "voice note too large", limit=MAX_VOICE_BYTES)
        extension = audio_type(data[:32])
        if extension is None:
            raise MediaRefused("not_media", "the file is not an Ogg, WebM, MP4, MP3 or AMR audio file")
        measured = ogg_duration(data) if extension == "ogg" else None
        duration = max(d for d in (measured, duration_seconds, 0) if d is not None)
        if duration > MAX_VOICE_SECONDS:
            raise MediaRefused("too_long", "voice note too long", limit=MAX_VOICE_SECONDS)
        return extension, round(duration) if duration else None, None
    raise ValueError(f"unknown media kind {kind!r}")


def store_media_sync(root: str | Path, data: bytes, kind: str, *, platform: str,
                     duration_seconds: float | None = None) -> StoredMedia:
    """Check and store one file under root/platform/xx/sha256.ext (a file sent twice is stored once)."""
    extension, duration, public = check_media(data, kind, duration_seconds=duration_seconds)
    digest = hashlib.sha256(data).hexdigest()
    relative = Path(platform) / digest[:2] / f"{digest}.{extension}"
    _write_once(Path(root) / relative, data)
    public_relative = None
    if public is not None:
        public_relative = Path(platform) / digest[:2] / f"{digest}.public.{extension}"
        _write_once(Path(root) / public_relative, public)
    return StoredMedia(
        kind=kind, path=relative.as_posix(), sha256=digest, size=len(data), content_type=CONTENT_TYPES[extension],
        duration_seconds=duration, public_path=public_relative.as_posix() if public_relative else None,
    )


async def store_media(root: str | Path, data: bytes, kind: str, *, platform: str,
                      duration_seconds: float | None = None) -> StoredMedia:
    """`store_media_sync` off the event loop (decoding an image takes a few milliseconds)."""
    return await asyncio.to_thread(store_media_sync, root, data, kind, platform=platform, duration_seconds=duration_seconds)


def resolve(root: str | Path, stored_path: str) -> Path:
    """A stored path as a file: relative to the attachments directory (older web uploads kept the
    directory in the path)."""
    path = Path(stored_path)
    if path.is_absolute():
        return path
    inside = Path(root) / path
    return inside if inside.exists() or not path.exists() else path


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(data)
        temporary = handle.name
    os.replace(temporary, path)


# -- signed links -----------------------------------------------------------------------------


async def link_secret(session: AsyncSession) -> bytes:
    """The key that signs media links: made once, kept in the database, the same on every instance."""
    value = await session.scalar(select(AppSecret.value).where(AppSecret.name == SECRET_NAME))
    if value is not None:
        return bytes.fromhex(value)
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(AppSecret).values(name=SECRET_NAME, value=secrets.token_hex(32)).on_conflict_do_nothing(index_elements=["name"])
    )
    value = await session.scalar(select(AppSecret.value).where(AppSecret.name == SECRET_NAME))
    return bytes.fromhex(value)


def _signature(secret: bytes, attachment_id: int, variant: str, expires: int) -> str:
    message = f"{attachment_id}:{variant}:{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def signed_query(secret: bytes, attachment_id: int, variant: str = "original", *, now: float | None = None,
                 seconds: int = LINK_SECONDS) -> str:
    """`/media/ID?v=…&exp=…&sig=…` for one file; works for `seconds`."""
    expires = int((now if now is not None else time.time()) + seconds)
    return f"/media/{attachment_id}?v={variant}&exp={expires}&sig={_signature(secret, attachment_id, variant, expires)}"


def check_signature(secret: bytes, attachment_id: int, variant: str, expires: str, signature: str,
                    *, now: float | None = None) -> bool:
    if not expires.isdigit() or variant not in ("original", "public"):
        return False
    if int(expires) < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(_signature(secret, attachment_id, variant, int(expires)), signature or "")
