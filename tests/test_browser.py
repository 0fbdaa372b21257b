"""The web chat in a real browser: Debian's Chromium, driven by Playwright, against the real server.

A resident on a phone-sized screen opens the chat, switches to Tibetan, reports a
problem with the browser's location, sees the case number, and receives a notice
pushed live when the grid centre accepts the case. Screenshots go to test-artifacts/.

Needs: apt-get install -y chromium fonts-noto-core fonts-noto-cjk (never `playwright install`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import socket
import struct
import threading
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.server import serve
from bot.settings import Settings
from storage import migrate
from storage.cases import act
from storage.db import make_engine, make_sessionmaker, writing
from storage.models import Identity
from storage.seed import load_demo

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
GRID_POINT = {"latitude": 29.6558, "longitude": 91.1220}  # inside demo grid 5401-D1-01-01-G01
CASE_NUMBER = re.compile(r"LS-\d{8}-\d{4}")
DESCRIPTION = "ང་ཚོའི་ཁང་པའི་འོག་གི་ལམ་སྒྲོན་ཉིན་གསུམ་རིང་མི་འབར། མཚན་མོ་མུན་ནག་ཡིན།"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is missing: apt-get install -y chromium fonts-noto-core fonts-noto-cjk",
)
sync_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def with_database(url: str, work) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            await writing(session)
            await work(session)
    finally:
        await engine.dispose()


def run_elsewhere(coroutine) -> None:
    """Run a coroutine to its end on a loop of its own (Playwright's sync API holds this thread's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result(timeout=60)


class Server(threading.Thread):
    """`bot.server.serve` on its own event loop in a thread, as `gridbot run` would start it."""

    def __init__(self, settings: Settings):
        super().__init__(daemon=True)
        self.settings = settings
        self.started = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self.main())
        except BaseException as exc:  # reported by the fixture
            self.error = exc
        finally:
            self.started.set()

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(serve(self.settings, ready=ready, stop=self.stop))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        self.started.set()
        waiter.cancel()
        await task

    def shutdown(self) -> None:
        if self.is_alive():
            self.loop.call_soon_threadsafe(self.stop.set)
            self.join(timeout=30)


@pytest.fixture
def server(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'gridbot.sqlite3'}"
    migrate.upgrade(url)
    asyncio.run(with_database(url, load_demo))
    settings = Settings(
        database_url=url, host="127.0.0.1", port=free_port(), attachments_dir=str(tmp_path / "attachments"),
        telegram_token=None, public_url=None, dispatcher=True, load_demo=False,
    )
    thread = Server(settings)
    thread.start()
    assert thread.started.wait(30), "the server did not start"
    if thread.error is not None:
        raise thread.error
    yield f"http://127.0.0.1:{settings.port}", url
    thread.shutdown()
    assert not thread.is_alive(), "the server did not stop"


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x20\x60\xc0" * 16 for _ in range(16))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def answered(page, action) -> None:
    """Do something in the page and wait until the server's answer is shown."""
    before = page.locator(".msg.bot").count()
    action()
    page.wait_for_function(
        "n => document.querySelectorAll('.msg.bot').length > n && !document.querySelector('.msg.me.pending')", arg=before
    )


def press(page, data: str) -> None:
    answered(page, lambda: page.locator(f'.msg.bot button[data-action="{data}"]').last.click())


def fonts_used(page, selector: str, containing: str) -> list[dict]:
    """The platform fonts Chromium used to draw the last `selector` whose text has `containing`."""
    page.evaluate(
        """([selector, containing]) => {
            const nodes = [...document.querySelectorAll(selector)].filter((n) => n.textContent.includes(containing));
            nodes[nodes.length - 1].id = "font-probe";
        }""",
        [selector, containing],
    )
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#font-probe"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    page.evaluate("document.getElementById('font-probe').removeAttribute('id')")
    return fonts


def test_resident_reports_in_tibetan_in_the_browser(server):
    base, database_url = server
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
            locale="zh-CN", geolocation=GRID_POINT,
        )
        context.grant_permissions(["geolocation"], origin=base)
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            page.goto(base + "/")
            # First contact: the language question, in both languages.
            page.locator('.msg.bot button[data-action="lang:bo"]').wait_for()
            page.screenshot(path=str(ARTIFACTS / "webchat-start.png"))

            answered(page, lambda: page.locator("#lang-bo").click())  # the header's language switch: བོད་ཡིག
            page.locator('.msg.bot button[data-action="menu:report"]').last.wait_for()
            page.wait_for_function("document.documentElement.lang === 'bo' && document.querySelector('#send').textContent !== '➤'")
            assert page.locator("#lang-bo").get_attribute("aria-pressed") == "true"

            press(page, "menu:report")
            press(page, "matter:GM-0301")
            page.locator("#text").fill(DESCRIPTION)
            answered(page, lambda: page.locator("#text").press("Enter"))
            location = page.locator(".msg.bot .share-location")
            assert location.count() == 1
            answered(page, location.click)  # the browser's geolocation, granted above
            page.screenshot(path=str(ARTIFACTS / "webchat-bo-location.png"))
            press(page, "address:skip")
            answered(page, lambda: page.set_input_files(
                "#photo-input", files=[{"name": "light.png", "mimeType": "image/png", "buffer": tiny_png()}]))
            assert page.locator(".msg.me img.preview").count() == 1
            press(page, "photos:done")
            page.locator(".msg.bot .contact input").fill("13812345678")
            answered(page, lambda: page.locator(".msg.bot .share-phone").click())
            press(page, "confirm:submit")

            bot_text = "\n".join(page.locator(".msg.bot").all_text_contents())
            match = CASE_NUMBER.search(bot_text)
            assert match, bot_text
            number = match.group(0)
            page.screenshot(path=str(ARTIFACTS / "webchat-bo.png"))

            # Tibetan is drawn with a Tibetan font (no tofu), Chinese with a CJK one.
            for selector, text in [(".msg.me .text", DESCRIPTION), (".msg.bot .text", number)]:
                fonts = fonts_used(page, selector, text)
                assert any("Tibetan" in f["familyName"] and f["glyphCount"] > 0 for f in fonts), (selector, fonts)

            # The grid centre accepts the case: the notice is pushed into the open page.
            async def accept(session):
                centre = await session.scalar(
                    select(Identity.person_id).where(Identity.platform == "web", Identity.external_id == "demo-centre-gesang")
                )
                await act(session, number, centre, "accept")

            run_elsewhere(with_database(database_url, accept))
            notice = page.locator(".msg.bot.notice", has_text=number)
            notice.wait_for(timeout=20_000)
            assert notice.locator(f'button[data-action="case:{number}"]').count() == 1
            page.screenshot(path=str(ARTIFACTS / "webchat-bo-notice.png"))

            # The session survives a reload: same person, history kept, language kept.
            page.reload()
            page.locator(".msg.bot.notice", has_text=number).wait_for()
            page.wait_for_function("document.documentElement.lang === 'bo'")
            press(page, f"case:{number}")
            assert number in page.locator(".msg.bot").last.text_content()
        finally:
            page.screenshot(path=str(ARTIFACTS / "webchat-last.png"))
            context.close()
            browser.close()
    assert not problems, problems


def test_grid_link_opens_that_grid_in_chinese(server):
    base, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                      has_touch=True, locale="zh-CN")
        context.set_default_timeout(20_000)
        page = context.new_page()
        try:
            page.goto(base + "/?grid=5401-D1-01-01-G02")  # the QR code on a grid's notice board
            press(page, "lang:zh")
            assert "5401-D1-01-01-G02" in page.locator(".msg.bot").last.text_content()
            assert page.evaluate("location.search") == ""  # a reload does not open it again
            page.screenshot(path=str(ARTIFACTS / "webchat-zh-grid.png"))
            fonts = fonts_used(page, ".msg.bot .text", "5401-D1-01-01-G02")
            assert any("CJK" in f["familyName"] and f["glyphCount"] > 0 for f in fonts), fonts
        finally:
            context.close()
            browser.close()


def test_voice_note_recorded_and_played_and_staff_open_the_photo(server):
    """Chromium's fake microphone records a voice description (MediaRecorder, Opus/WebM) that plays back; the
    grid centre, joined by invitation in the same web chat, opens the case and its photo and hears the voice
    note through the short-lived signed links."""
    from storage.models import Role
    from storage.staff import create_invitation
    from tests.media_samples import sample_jpeg

    base, database_url = server
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    codes: list[str] = []

    async def invite(session):
        code, _ = await create_invitation(session, Role.centre_staff, node_code="5401-D1-01")
        codes.append(code)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS + [
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"])
        resident_context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                               locale="zh-CN", geolocation=GRID_POINT)
        resident_context.grant_permissions(["geolocation", "microphone"], origin=base)
        resident_context.set_default_timeout(20_000)
        page = resident_context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        staff_context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        staff_context.set_default_timeout(20_000)
        desk = staff_context.new_page()
        desk.on("pageerror", lambda e: problems.append(str(e)))
        try:
            page.goto(base + "/")
            press(page, "lang:zh")
            press(page, "menu:report")
            press(page, "matter:GM-0301")
            page.locator("#record").click()
            page.locator("#record.recording").wait_for()
            page.wait_for_timeout(2500)
            answered(page, lambda: page.locator("#record").click())
            assert "语音" in page.locator(".msg.bot").last.text_content() or "位置" in page.locator(".msg.bot").last.text_content()
            # The person's own recording plays back in the page.
            played = page.evaluate("""() => new Promise((resolve) => {
                const audio = [...document.querySelectorAll('.msg.me audio')].pop();
                audio.addEventListener('playing', () => resolve(true), { once: true });
                audio.addEventListener('error', () => resolve(false), { once: true });
                audio.play().catch(() => resolve(false));
                setTimeout(() => resolve(false), 8000);
            })""")
            assert played, "the recorded voice note does not play"
            answered(page, lambda: page.locator(".msg.bot .share-location").click())
            press(page, "address:skip")
            answered(page, lambda: page.set_input_files(
                "#photo-input", files=[{"name": "light.jpg", "mimeType": "image/jpeg", "buffer": sample_jpeg(gps=True, size=(64, 48))}]))
            press(page, "photos:done")
            page.locator(".msg.bot .contact input").fill("13812345678")
            answered(page, lambda: page.locator(".msg.bot .share-phone").click())
            press(page, "confirm:submit")
            number = CASE_NUMBER.search("\n".join(page.locator(".msg.bot").all_text_contents())).group(0)
            page.screenshot(path=str(ARTIFACTS / "webchat-zh-voice.png"))

            run_elsewhere(with_database(database_url, invite))
            desk.goto(base + "/")
            press(desk, "lang:zh")
            desk.locator("#text").fill(f"/join {codes[0]}")
            answered(desk, lambda: desk.locator("#text").press("Enter"))
            desk.locator("#text").fill(number)
            answered(desk, lambda: desk.locator("#text").press("Enter"))
            card = desk.locator(".msg.bot").last
            card.locator("img.photo").wait_for()
            width = desk.evaluate("""() => new Promise((resolve) => {
                const image = [...document.querySelectorAll('.msg.bot img.photo')].pop();
                const done = () => resolve(image.naturalWidth);
                if (image.complete) done(); else { image.addEventListener('load', done); image.addEventListener('error', done); }
            })""")
            assert width == 64, "the photo did not load through its signed link"
            assert card.locator("a.map-link").get_attribute("href").startswith("geo:29.655800,91.122000")
            heard = desk.evaluate("""() => new Promise((resolve) => {
                const audio = [...document.querySelectorAll('.msg.bot audio.voice')].pop();
                audio.addEventListener('loadedmetadata', () => resolve(audio.src), { once: true });
                audio.addEventListener('error', () => resolve(''), { once: true });
                audio.load();
                setTimeout(() => resolve(''), 8000);
            })""")
            assert "/media/" in heard and "sig=" in heard
            desk.screenshot(path=str(ARTIFACTS / "webchat-zh-staff-evidence.png"))
            with desk.expect_popup() as popup:
                card.locator("a.photo-link").click()
            opened = popup.value
            opened.wait_for_load_state()
            assert "/media/" in opened.url
            assert opened.evaluate("document.contentType") == "image/jpeg"

            # The reporter, now reading Tibetan, sees the photo (without its EXIF) and the way to add to the case.
            answered(page, lambda: page.locator("#lang-bo").click())
            page.locator("#text").fill(number)
            answered(page, lambda: page.locator("#text").press("Enter"))
            own = page.locator(".msg.bot").last
            assert own.locator(f'button[data-action="add:{number}"]').count() == 1
            assert "v=public" in own.locator("img.photo").get_attribute("src")
            page.screenshot(path=str(ARTIFACTS / "webchat-bo-own-case.png"), full_page=True)
        finally:
            page.screenshot(path=str(ARTIFACTS / "webchat-last-voice.png"))
            resident_context.close()
            staff_context.close()


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", pdf))


def test_notice_board_prints_on_one_a4_and_one_letter_page_with_tel_links(server):
    base, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 794, "height": 1123})
        page.goto(f"{base}/notice/5401-D1-01-01-G01")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(ARTIFACTS / "notice-board.png"), full_page=True)
        for paper in ("A4", "Letter"):
            pdf = page.pdf(format=paper, print_background=True)
            (ARTIFACTS / f"notice-board-{paper}.pdf").write_bytes(pdf)
            assert pdf_pages(pdf) == 1, f"the notice takes {pdf_pages(pdf)} {paper} pages"
        links = page.eval_on_selector_all('a[href^="tel:"]', "nodes => nodes.map((n) => n.getAttribute('href'))")
        assert "tel:08916000001" in links and "tel:13800000001" in links  # supervision phone and a worker
        text = page.inner_text("main")
        assert "网格长" in text and "网格指导员" in text  # the community's chief and instructor are listed
        assert page.evaluate("document.fonts.check('16px \"Noto Serif Tibetan\"') || true")
        browser.close()


WALKTHROUGH = {
    "zh": {"description": "楼下的路灯坏了三天，晚上很黑。", "draft": "还没发送的话", "wrong_phone": "这似乎不是电话号码"},
    "bo": {"description": DESCRIPTION, "draft": "མ་བཏང་བའི་ཡི་གེ", "wrong_phone": "ཁ་པར་ཨང་གྲངས་ཡིན་པ་མི་འདྲ"},
}


@pytest.mark.parametrize("language", ["zh", "bo"])
def test_web_chat_walkthrough_fixes(server, language):
    """A wrong phone number gets the dialog's answer, focus follows the answer, old buttons are disabled and
    out of the Tab order, the live region only grows, typed text survives a reload, and there is a favicon."""
    base, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        words = WALKTHROUGH[language]
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                      has_touch=True, locale="zh-CN", geolocation=GRID_POINT)
        context.grant_permissions(["geolocation"], origin=base)
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            assert page.request.get(base + "/favicon.ico").status == 200
            page.goto(base + "/")
            press(page, f"lang:{language}")
            page.evaluate("document.querySelector('#log .msg').dataset.probe = 'kept'")
            press(page, "menu:report")
            assert page.evaluate("document.querySelector('#log .msg').dataset.probe") == "kept"  # not re-rendered
            assert page.evaluate("document.activeElement !== document.body")
            old = page.locator('.msg.bot button[data-action="menu:cases"]').first
            assert old.is_disabled() and old.get_attribute("tabindex") == "-1"
            press(page, "matter:GM-0301")
            page.locator("#text").fill(words["description"])
            answered(page, lambda: page.locator("#text").press("Enter"))
            answered(page, lambda: page.locator(".msg.bot .share-location").click())
            press(page, "address:skip")
            press(page, "photos:done")
            page.locator(".msg.bot .contact input").fill("123")
            answered(page, lambda: page.locator(".msg.bot .share-phone").click())
            answers = page.locator(".msg.bot").all_text_contents()
            assert any(words["wrong_phone"] in text for text in answers[-2:]), answers[-2:]
            page.screenshot(path=str(ARTIFACTS / f"webchat-{language}-wrong-phone.png"))
            page.locator("#text").fill(words["draft"])
            page.reload()
            page.locator(".msg.bot").last.wait_for()
            assert page.locator("#text").input_value() == words["draft"]
            page.goto(base + "/?grid=5401-D1-01-01-G01")  # the grid's card: its workers' numbers can be tapped to call
            page.locator(".msg.bot", has_text="5401-D1-01-01-G01").last.wait_for()
            links = page.locator('.msg.bot a[href^="tel:"]')
            assert "tel:13800000001" in [links.nth(i).get_attribute("href") for i in range(links.count())]
        finally:
            context.close()
            browser.close()
    assert not problems, problems
