"""A case's photos and voice notes as a reply carries them (each adapter shows them its own way)."""

from __future__ import annotations

from storage.models import Attachment, Case, CaseEvent

from .context import Context

MAX_SHOWN = 10
# Evidence residents may see besides their own: photos of the problem and of its result (without EXIF);
# another person's voice is never played to a resident.
RESIDENT_VISIBLE = ("report", "add_to_case", "resubmit", "submit_result", "resolve_on_spot", "verify_pass")


def media_entry(attachment: Attachment, *, for_staff: bool) -> dict:
    """One attachment for `Reply.media`. Staff get the original; other readers the copy without EXIF."""
    public = not for_staff and bool(attachment.public_path)
    return {
        "attachment": attachment.id,
        "kind": attachment.kind or "photo",
        "content_type": attachment.content_type,
        "platform": attachment.platform,
        "file_id": attachment.platform_file_id if not public else None,
        "path": attachment.public_path if public else attachment.stored_path,
        "variant": "public" if public else "original",
    }


def case_media(ctx: Context, case: Case, events: list[CaseEvent], *, for_staff: bool,
               event_id: int | None = None) -> list[dict]:
    """The case's evidence this reader may see (the last ten), optionally of one event only."""
    by_id = {e.id: e for e in events}
    shown = []
    for attachment in case.attachments:
        if event_id is not None and attachment.event_id != event_id:
            continue
        if not (attachment.stored_path or attachment.platform_file_id):
            continue
        if not for_staff:
            event = by_id.get(attachment.event_id)
            own = event is not None and event.actor_id == ctx.person.id
            if not own and (event is None or event.action not in RESIDENT_VISIBLE or attachment.kind == "voice"):
                continue
        shown.append(media_entry(attachment, for_staff=for_staff))
    return shown[-MAX_SHOWN:]
