"""Evidence over HTTP: `/media/ID?v=…&exp=…&sig=…` serves one stored photo or voice note.

Links are made only for a reader who may see the file (the web chat for its cards, the case API
for staff tokens) and work for `storage.media.LINK_SECONDS`; the signing key lives in the database,
so a link made by one instance works on every other.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from storage import media
from storage.models import Attachment

from ..runtime import Runtime

class MediaLinks:
    """Makes signed links with the shared key (read from the database once per process)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._secret: bytes | None = None

    async def secret(self) -> bytes:
        if self._secret is None:
            async with self.runtime.sessionmaker.begin() as session:
                self._secret = await media.link_secret(session)
        return self._secret

    async def link(self, attachment_id: int, variant: str = "original") -> str:
        return media.signed_query(await self.secret(), attachment_id, variant)

    async def with_links(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A reply payload whose media entries carry a fresh link each (never a file id or a path)."""
        if not payload.get("media"):
            return payload
        shown = []
        for entry in payload["media"]:
            if entry.get("attachment") is None:
                continue
            shown.append({"kind": entry.get("kind", "photo"), "content_type": entry.get("content_type"),
                          "url": await self.link(int(entry["attachment"]), entry.get("variant", "original"))})
        return {**payload, "media": shown}


LINKS = web.AppKey("media_links", MediaLinks)


async def serve(request: web.Request) -> web.StreamResponse:
    """The file, if the link is genuine and fresh; 403 otherwise, 404 when the file is gone."""
    links: MediaLinks = request.app[LINKS]
    raw_id = request.match_info["attachment_id"]
    variant = request.query.get("v", "original")
    if not raw_id.isdigit() or len(raw_id) > 18 or not media.check_signature(
        await links.secret(), int(raw_id), variant, request.query.get("exp", ""), request.query.get("sig", "")
    ):
        return web.json_response({"error": {"code": "link_expired", "message": "this link is not valid or has expired"}},
                                 status=403)
    async with links.runtime.sessionmaker() as session:
        attachment = await session.get(Attachment, int(raw_id))
    stored = None
    if attachment is not None:
        stored = attachment.public_path if variant == "public" else attachment.stored_path
    if not stored:
        return web.json_response({"error": {"code": "not_found", "message": "no such file"}}, status=404)
    path = media.resolve(links.runtime.settings.attachments_dir, stored)
    if not path.is_file():
        return web.json_response({"error": {"code": "not_found", "message": "the file is no longer stored"}}, status=404)
    response = web.FileResponse(path, headers={
        "Content-Type": attachment.content_type or "application/octet-stream",
        "Cache-Control": "private, max-age=300",
        "Content-Disposition": "inline",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })
    return response


def setup(app: web.Application, runtime: Runtime) -> MediaLinks:
    links = MediaLinks(runtime)
    app[LINKS] = links
    app.router.add_get("/media/{attachment_id}", serve)
    return links
