"""The grid-centre console in Debian's Chromium: a centre staff member signs in with a one-time link, sorts
and filters the queue, opens a case and accepts it, reads the indicators, in Chinese and Tibetan.
Screenshots go to test-artifacts/."""

from __future__ import annotations


import pytest
from sqlalchemy import select

from storage import api_tokens, cases, console_logins
from storage.db import make_engine, make_sessionmaker
from storage.models import Case
from storage.people import person_for_identity
from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM, run_elsewhere, server, sync_api, with_database  # noqa: F401

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
G01 = "5401-D1-01-01-G01"


def prepare(url: str) -> tuple[str, list[str]]:
    found: dict = {}

    async def work(session):
        resident, _ = await person_for_identity(session, "web", "browser-resident", language="zh")
        numbers = []
        for text in ("楼下路灯坏了，晚上很黑", "路口的路灯一直闪"):
            case = await cases.open_case(session, reporter_id=resident.id, matter_code="GM-0301", description=text,
                                         language="zh", grid_code=G01, latitude=29.6558, longitude=91.1220)
            numbers.append(case.number)
        staff = await api_tokens.find_person(session, "demo-centre-gesang")
        found["secret"] = await console_logins.create_link(session, staff.id)
        found["numbers"] = numbers

    run_elsewhere(with_database(url, work))
    return found["secret"], found["numbers"]


def state_of(url: str, number: str) -> str:
    async def read():
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                return await session.scalar(select(Case.state).where(Case.number == number))
        finally:
            await engine.dispose()

    result = {}

    async def keep():
        result["state"] = await read()

    run_elsewhere(keep())
    return result["state"]


def test_centre_staff_uses_the_console_in_chromium(server):  # noqa: F811
    base, url = server
    secret, numbers = prepare(url)
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                      has_touch=True, locale="zh-CN")
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        try:
            page.goto(f"{base}/console/login/{secret}")
            assert page.url == f"{base}/console/"
            page.locator(f'#queue tbody tr[data-number="{numbers[1]}"]').wait_for()
            assert page.locator("#title").text_content() == "网格化工作机构工作台"
            cookies = {c["name"]: c for c in context.cookies()}
            assert cookies["gridbot_console"]["httpOnly"] and cookies["gridbot_console"]["sameSite"] == "Lax"
            page.screenshot(path=str(ARTIFACTS / "console-queue-zh.png"), full_page=True)

            # Sort by case number, newest number first: the second case comes first.
            page.locator('th button[data-sort="number"]').click()
            page.locator('th button[data-sort="number"]').click()
            page.wait_for_function("() => document.querySelector('th button[data-sort=number]').parentElement"
                                   ".getAttribute('aria-sort') === 'descending'")
            page.wait_for_function(f"() => document.querySelector('#queue tbody tr').dataset.number === '{numbers[1]}'")
            # Filter: nothing is overdue.
            page.select_option("#f-flag", "overdue")
            page.wait_for_function("() => document.querySelectorAll('#queue tbody tr[data-number]').length === 0")
            page.select_option("#f-flag", "")
            page.locator(f'#queue tbody tr[data-number="{numbers[0]}"]').click()
            page.locator('#detail button[data-action="accept"]').wait_for()
            assert "geo:29.6558,91.122" == page.locator("#detail a.geo").get_attribute("href")
            page.screenshot(path=str(ARTIFACTS / "console-case-zh.png"), full_page=True)
            page.locator('#detail button[data-action="accept"]').click()
            page.locator("#detail form.inputs button[type=submit]").click()
            page.wait_for_function("() => document.querySelector('#alert').textContent === '已完成。'")
            page.locator('#detail button[data-action="transfer"]').wait_for()
            assert state_of(url, numbers[0]) == "accepted"

            # Transfer needs a department: chosen from the list the form offers.
            page.locator('#detail button[data-action="transfer"]').click()
            page.select_option("#detail form.inputs select[name=department]", "urban_management")
            page.locator("#detail form.inputs button[type=submit]").click()
            page.wait_for_function("() => document.querySelector('#detail h2').textContent.includes('" + numbers[0] + "')"
                                   " && !document.querySelector('#detail button[data-action=transfer]')")
            assert state_of(url, numbers[0]) == "transferred"

            # Tibetan, and the indicators with their chart.
            page.locator("#lang-bo").click()
            page.wait_for_function("() => document.documentElement.lang === 'bo'")
            page.locator("#tab-dashboard").click()
            page.locator('#stats tr[data-key="reported"] td').wait_for()
            assert page.locator('#stats tr[data-key="reported"] td').text_content() == "༢"
            page.wait_for_function("() => document.querySelector('#stats img') && document.querySelector('#stats img').naturalWidth > 0")
            page.screenshot(path=str(ARTIFACTS / "console-indicators-bo.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})  # on a desktop, the list and the case side by side
            page.locator("#tab-queue").click()
            page.locator("#queue tbody tr[data-number]").first.wait_for()
            page.locator(f'#queue tbody tr[data-number="{numbers[0]}"]').click()
            page.wait_for_function("() => document.querySelector('#detail h2') && document.querySelector('#detail h2').textContent.includes('"
                                   + numbers[0] + "')")
            page.screenshot(path=str(ARTIFACTS / "console-desktop-bo.png"), full_page=True)
            timeline = page.locator("#detail .timeline").text_content()
            assert "urban_management" not in timeline and "གྲོང་ཁྱེར" in timeline  # the department by name
        finally:
            browser.close()
    assert not problems, problems


def test_staff_member_gets_the_link_in_the_web_chat_and_opens_it(server):  # noqa: F811
    from storage.models import Role
    from storage.staff import create_invitation
    from tests.test_browser import answered, press

    base, url = server
    found = {}

    async def invite(session):
        found["code"], _ = await create_invitation(session, Role.centre_staff, node_code="5401-D1-01")

    run_elsewhere(with_database(url, invite))
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      locale="zh-CN")
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            page.goto(base + "/")
            page.locator('.msg.bot button[data-action="lang:zh"]').wait_for()
            press(page, "lang:zh")
            for text in (f"/join {found['code']}", "/console"):
                page.locator("#text").fill(text)
                answered(page, lambda: page.locator("#text").press("Enter"))
            link = page.locator('.msg.bot a[href^="/console/login/"]').last
            link.wait_for()
            with context.expect_page() as opened:
                link.click()
            console = opened.value
            console.wait_for_load_state()
            console.locator("#title").wait_for()
            console.wait_for_function("() => document.querySelector('#title').textContent === '网格化工作机构工作台'")
            assert console.url == f"{base}/console/"
            console.screenshot(path=str(ARTIFACTS / "console-from-chat.png"))
        finally:
            browser.close()
    assert not problems, problems
