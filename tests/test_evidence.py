"""Evidence (issue 13): photos and voice notes checked and stored once, served by short-lived signed links to
those who may see them (web chat, case API for staff), never in public Open311; voice notes from the web chat."""

from __future__ import annotations

import io
import time

import pytest
from aiohttp import FormData
from PIL import Image
from sqlalchemy import func, select

from bot.web.media import LINKS
from storage import api_tokens, media
from storage.models import Attachment, Case, Role
from storage.staff import create_invitation
from tests.media_samples import sample_jpeg, sample_ogg_opus, sample_webm
from bot.web.app import create_app
from bot.web.security import ChatLimits
from tests.test_web_chat import CASE_NUMBER, GRID_POINT, STREET_LIGHT, WebUser, report_until_confirm, says, start
from tests.test_web_chat import runtime  # noqa: F401  (a fixture)


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(create_app(runtime, chat_limits=ChatLimits(client_burst=200)))


def gps_of(data: bytes):
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif().get_ifd(0x8825)


# -- the one way in: storage.media ---------------------------------------------------------------


def test_photos_are_decoded_and_a_copy_without_exif_is_kept(tmp_path):
    original = sample_jpeg(gps=True)
    assert gps_of(original)  # the phone wrote where it was taken
    stored = media.store_media_sync(tmp_path, original, "photo", platform="web")
    assert stored.content_type == "image/jpeg" and stored.size == len(original)
    assert (tmp_path / stored.path).read_bytes() == original  # staff get the original
    public = (tmp_path / stored.public_path).read_bytes()
    assert not gps_of(public) and Image.open(io.BytesIO(public)).size == (32, 24)
    again = media.store_media_sync(tmp_path, original, "photo", platform="web")
    assert again.path == stored.path  # stored once by content
    assert media.store_media_sync(tmp_path, sample_jpeg(), "photo", platform="web").public_path is None  # nothing to strip


@pytest.mark.parametrize("data,kind,code", [
    (b"\xff\xd8\xff\xe0 only the first bytes of a JPEG", "photo", "not_media"),
    (b"%PDF-1.7 a document", "photo", "not_media"),
    (b"", "photo", "empty"),
    (b"\xff\xd8\xff" + bytes(media.MAX_PHOTO_BYTES), "photo", "too_large"),  # a 10 MB+ file
    (sample_jpeg(), "voice", "not_media"),  # a photo is no voice note
    (sample_ogg_opus(seconds=600), "voice", "too_long"),  # a 10-minute voice note, measured in the file
    (b"OggS" + bytes(media.MAX_VOICE_BYTES), "voice", "too_large"),
])
def test_what_is_not_what_it_claims_or_too_big_is_not_stored(tmp_path, data, kind, code):
    with pytest.raises(media.MediaRefused) as refused:
        media.store_media_sync(tmp_path, data, kind, platform="wechat")
    assert refused.value.code == code
    assert not any(tmp_path.rglob("*.*"))


def test_voice_notes_keep_the_original_with_their_duration(tmp_path):
    stored = media.store_media_sync(tmp_path, sample_ogg_opus(seconds=12.4), "voice", platform="telegram")
    assert stored.content_type == "audio/ogg" and stored.duration_seconds == 12 and stored.path.endswith(".ogg")
    webm = media.store_media_sync(tmp_path, sample_webm(), "voice", platform="web", duration_seconds=7.6)
    assert webm.content_type == "audio/webm" and webm.duration_seconds == 8
    with pytest.raises(media.MediaRefused):  # the browser's own measure counts too
        media.store_media_sync(tmp_path, sample_webm(), "voice", platform="web", duration_seconds=240)


def test_signed_links_expire_and_cannot_be_altered():
    secret = b"k" * 32
    link = media.signed_query(secret, 7, "public", now=1000.0)
    query = dict(part.split("=") for part in link.split("?")[1].split("&"))
    assert media.check_signature(secret, 7, "public", query["exp"], query["sig"], now=1000.0 + 60)
    assert not media.check_signature(secret, 7, "public", query["exp"], query["sig"], now=1000.0 + media.LINK_SECONDS + 1)
    assert not media.check_signature(secret, 8, "public", query["exp"], query["sig"], now=1000.0)
    assert not media.check_signature(secret, 7, "original", query["exp"], query["sig"], now=1000.0)
    assert not media.check_signature(b"x" * 32, 7, "public", query["exp"], query["sig"], now=1000.0)


# -- through the web chat and the API ----------------------------------------------------------------


async def web_staff(client, demo, role=Role.centre_staff, node="5401-D1-01") -> WebUser:
    async with demo.begin() as session:
        code, _ = await create_invitation(session, role, node_code=node)
    user = WebUser(client)
    await start(user, "zh")
    await user.text(f"/join {code}")
    return user


def urls(answer: dict, kind: str = "photo") -> list[str]:
    return [m["url"] for r in answer["replies"] for m in r.get("media", []) if m["kind"] == kind]


async def test_staff_open_the_photo_and_the_reporter_sees_it_without_its_location(client, demo, runtime):
    resident = WebUser(client)
    await start(resident, "zh")
    original = sample_jpeg(gps=True)
    await report_until_confirm(resident, "zh", photo=original)
    await resident.press("confirm:submit")
    number = CASE_NUMBER.search(resident.text_shown).group(0)

    centre = await web_staff(client, demo)
    await centre.text(number)
    [link] = urls(centre.answer)
    photo = await client.get(link)
    assert photo.status == 200 and photo.headers["Content-Type"] == "image/jpeg"
    assert photo.headers["Cache-Control"].startswith("private") and await photo.read() == original
    card = next(r for r in centre.answer["replies"] if r.get("media"))
    assert card["location"] == list(GRID_POINT) and f"{GRID_POINT[0]:.6f}, {GRID_POINT[1]:.6f}" in card["text"]

    await resident.text(number)
    [own] = urls(resident.answer)
    assert "v=public" in own
    seen = await client.get(own)
    assert seen.status == 200 and not gps_of(await seen.read())

    # A link altered, or to another file, or late: refused, with a stable code.
    for bad in (link.replace("sig=", "sig=0"), link.replace("/media/", "/media/9"), link.replace("v=original", "v=public")):
        refused = await client.get(bad)
        assert refused.status in (403, 404) and (await refused.json())["error"]["code"] in ("link_expired", "not_found")
    secret = await client.app[LINKS].secret()
    async with demo() as session:
        attachment_id = await session.scalar(select(Attachment.id))
    stale = media.signed_query(secret, attachment_id, now=time.time() - media.LINK_SECONDS - 5)
    assert (await client.get(stale)).status == 403


async def voice(user: WebUser, content: bytes, duration: float = 5, status: int = 200) -> dict:
    form = FormData()
    form.add_field("voice", content, filename="voice.webm", content_type="audio/webm")
    response = await user.client.post(
        f"/chat/voice?client_id={user.client_id}&message_id={user.next_id()}&duration={duration}", data=form)
    assert response.status == status, await response.text()
    body = await response.json()
    if status == 200:
        user.answer = body
    return body


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_a_web_voice_note_describes_the_problem_and_staff_play_it(client, demo, language):
    resident = WebUser(client)
    await start(resident, language)
    await resident.press("menu:report")
    await resident.press(f"matter:{STREET_LIGHT}")
    # Too long, too large, or not audio: a stable 4xx and nothing stored; the step is still open.
    assert (await voice(resident, sample_webm(), duration=600, status=422))["error"]["code"] == "too_long"
    assert (await voice(resident, sample_ogg_opus(seconds=400), status=422))["error"]["code"] == "too_long"
    assert (await voice(resident, b"\x1a\x45\xdf\xa3" + bytes(media.MAX_VOICE_BYTES), status=413))["error"]["code"] == "too_large"
    assert (await voice(resident, sample_jpeg(), status=415))["error"]["code"] == "invalid_voice"
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 0
    await voice(resident, sample_webm(), duration=6.2)
    assert says(language, resident.answer, "Voice message received: it will be the description of your report.")
    await resident.at(*GRID_POINT)
    await resident.press("address:skip")
    await resident.press("photos:done")
    await resident.post({"kind": "contact", "phone": "13812345678"})
    assert says(language, resident.answer, "The description is your voice message; staff will listen to it.")
    await resident.press("confirm:submit")
    number = CASE_NUMBER.search(resident.text_shown).group(0)
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        [note] = case.attachments
        assert (note.kind, note.content_type, note.duration_seconds) == ("voice", "audio/webm", 6)

    centre = await web_staff(client, demo)
    await centre.text(number)
    [link] = urls(centre.answer, "voice")
    played = await client.get(link)
    assert played.status == 200 and played.headers["Content-Type"] == "audio/webm" and await played.read() == sample_webm()


async def test_the_api_gives_staff_tokens_media_urls_and_open311_none(client, demo):
    resident = WebUser(client)
    await start(resident, "zh")
    await report_until_confirm(resident, "zh", photo=sample_jpeg())
    await resident.press("confirm:submit")
    number = CASE_NUMBER.search(resident.text_shown).group(0)
    async with demo.begin() as session:
        centre = await api_tokens.find_person(session, "demo-centre-gesang")
        _, staff_token = await api_tokens.create_token(session, centre.id, "test")
        reporter = await session.scalar(select(Case.reporter_id).where(Case.number == number))
        _, resident_token = await api_tokens.create_token(session, reporter, "test")
    seen = await (await client.get(f"/api/cases/{number}", headers={"Authorization": f"Bearer {staff_token}"})).json()
    [photo] = seen["attachments"]
    assert photo["kind"] == "photo" and photo["media_url"].startswith("http")
    fetched = await client.get("/" + photo["media_url"].split("//", 1)[1].split("/", 1)[1])
    assert fetched.status == 200 and await fetched.read() == sample_jpeg()
    own = await (await client.get(f"/api/cases/{number}", headers={"Authorization": f"Bearer {resident_token}"})).json()
    assert own["attachments"][0]["media_url"] is None
    public = await (await client.get(f"/open311/v2/requests/{number}.json")).json()
    assert all(r.get("media_url") is None for r in (public if isinstance(public, list) else [public]))


async def test_a_grid_role_not_covering_the_case_gets_no_link(client, demo):
    resident = WebUser(client)
    await start(resident, "zh")
    await report_until_confirm(resident, "zh", photo=sample_jpeg())
    await resident.press("confirm:submit")
    number = CASE_NUMBER.search(resident.text_shown).group(0)
    outsider = WebUser(client)
    await start(outsider, "zh")
    await outsider.text(number)
    assert urls(outsider.answer) == []


async def test_two_instances_sign_and_accept_the_same_links(sessionmaker, tmp_path):
    """The signing key is made once in the database: a link made by one instance works on another."""
    from bot.web.media import MediaLinks
    from tests.test_web_chat import make_runtime

    first, second = MediaLinks(make_runtime(sessionmaker, tmp_path)), MediaLinks(make_runtime(sessionmaker, tmp_path))
    link = await first.link(42)
    query = dict(part.split("=") for part in link.split("?")[1].split("&"))
    assert media.check_signature(await second.secret(), 42, "original", query["exp"], query["sig"])
    assert len(await first.secret()) == 32
