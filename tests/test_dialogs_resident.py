"""Resident dialogs, as transcripts in Chinese and in Tibetan, through the platform-neutral layer."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from conversations.engine import Engine
from conversations.i18n import translate
from storage.models import Attachment, Case
from storage.timeutil import utcnow
from tests.transcript import Chat, Contact, Location, Photo, Press, says

GRID_POINT = (29.6558, 91.1220)  # inside 5401-D1-01-01-G01
OUTSIDE = (29.70, 91.30)
STREET_LIGHT = "GM-0301"

DESCRIPTIONS = {
    "zh": "楼下的路灯已经坏了三天，晚上很黑。",
    "bo": "ང་ཚོའི་ཁང་པའི་འོག་གི་ལམ་སྒྲོན་ཉིན་གསུམ་རིང་མི་འབར།",
}
CASE_NUMBER = re.compile(r"LS-\d{8}-\d{4}")


def case_number_in(chat: Chat) -> str:
    match = CASE_NUMBER.search(chat.text)
    assert match, chat.text
    return match.group(0)


async def start(engine, user: str, language: str, language_code: str | None = None) -> Chat:
    chat = Chat(engine, user, language, language_code=language_code)
    await chat.run([
        ("/start", "Please choose your language."),
        (Press(f"lang:{language}"), ["Welcome to the grid service of Lhasa. Tell us about a problem in your neighbourhood "
                                     "and follow it until it is solved.", "What would you like to do?"]),
    ])
    return chat


def report_transcript(language: str) -> list:
    return [
        (Press("menu:report"), "What kind of problem is it? Choose below, or type a few words and I will suggest the right kind."),
        (Press(f"matter:{STREET_LIGHT}"), "Please describe the problem in a few sentences: what is wrong, since when, who is affected. "
                                          "(at most {limit} characters)"),
        (DESCRIPTIONS[language], "Where is the problem? Share your location with the button below, or choose the place step by step."),
        (Location(*GRID_POINT), ["Grid: {grid}", "Add an address or a landmark (building, street, door number) so the grid worker finds it, or skip."]),
        ("3号楼东侧" if language == "zh" else "ཁང་པ་ཨང་༣ཤར་ཕྱོགས།", "You may send up to {limit} photos of the problem. Press Done when finished, or Skip."),
        (Photo("photo-1"), "Photo {count} received. Send another, or press Done."),
        (Press("photos:done"), "May the grid worker call you about it? Share or type your phone number, or stay anonymous. "
                               "Your number is shown only to the grid worker and the department handling the case."),
        (Contact("+86 138 1234 5678"), "Please check your report:\n\nKind: {matter}\nDescription: {description}\nPlace: {place}\nPhotos: {photos}\nPhone: {phone}"),
        (Press("confirm:submit"), "Your report has been filed. Case number: {number}\n\nGrid: {grid}\nTime limit for handling: {limit}, "
                                  "counted from when a department receives it.\n\nKeep the number: type it here at any time to see what has happened."),
    ]


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_resident_reports_a_problem_and_gets_a_case_number(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"resident-{language}", language)
    await chat.run(report_transcript(language))
    number = case_number_in(chat)
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == number))
        assert case.grid.code == "5401-D1-01-01-G01"
        assert case.description == DESCRIPTIONS[language]
        assert case.description_language == language
        assert case.contact_phone == "13812345678"
        assert case.matter.code == STREET_LIGHT
        assert await session.scalar(select(func.count()).select_from(Attachment).where(Attachment.case_id == case.id)) == 1
    # The reply names the grid and the time limit in the person's language.
    assert translate(language, "{days} days", days="3" if language == "zh" else "༣") in chat.text


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_typing_a_description_suggests_matters(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"typist-{language}", language)
    await chat.run([
        (Press("menu:report"), "What kind of problem is it? Choose below, or type a few words and I will suggest the right kind."),
        (DESCRIPTIONS[language], ["Is it one of these?", lambda c: f"matter:{STREET_LIGHT}" == c.buttons()[0]]),
        (Press(f"matter:{STREET_LIGHT}"), lambda c: "describe:typed" in c.buttons()),
        (Press("describe:typed"), "Where is the problem? Share your location with the button below, or choose the place step by step."),
    ])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_free_text_outside_a_dialog_starts_a_report(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"free-{language}", language)
    await chat.run([(DESCRIPTIONS[language], ["Is it one of these?"])])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_back_at_every_step_returns_to_the_previous_question(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"back-{language}", language)
    await chat.run(report_transcript(language)[:8])
    # Now at the summary: walk all the way back.
    await chat.run([
        (Press("nav:back"), "May the grid worker call you about it? Share or type your phone number, or stay anonymous. "
                            "Your number is shown only to the grid worker and the department handling the case."),
        (Press("nav:back"), "You may send up to {limit} photos of the problem. Press Done when finished, or Skip."),
        (Press("nav:back"), "Add an address or a landmark (building, street, door number) so the grid worker finds it, or skip."),
        (Press("nav:back"), "Where is the problem? Share your location with the button below, or choose the place step by step."),
        (Press("nav:back"), "Please describe the problem in a few sentences: what is wrong, since when, who is affected. "
                            "(at most {limit} characters)"),
        (Press("nav:back"), "What kind of problem is it? Choose below, or type a few words and I will suggest the right kind."),
    ])


CANCEL_POINTS = ["describe", "locate", "address", "photos", "phone", "confirm"]


@pytest.mark.parametrize("language", ["zh", "bo"])
@pytest.mark.parametrize("step", range(1, 9))
async def test_cancel_at_every_step_files_nothing(demo, language, step):
    engine = Engine(demo)
    chat = await start(engine, f"cancel-{language}-{step}", language)
    await chat.run(report_transcript(language)[:step])
    assert "nav:cancel" in chat.buttons()
    await chat.run([(Press("nav:cancel"), ["Cancelled. Nothing was sent.", "What would you like to do?"])])
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_every_answer_is_validated_politely(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"validate-{language}", language)
    await chat.run([
        (Press("menu:report"), "What kind of problem is it? Choose below, or type a few words and I will suggest the right kind."),
        ("xyzzy qqq", "I could not find a matching kind of problem. Please choose one from the list."),
        (Press(f"matter:{STREET_LIGHT}"), "Please describe the problem in a few sentences: what is wrong, since when, who is affected. "
                                          "(at most {limit} characters)"),
        ("   ", "The description is too short. Please say a little more about the problem."),
        ("x" * 1001, "The description is too long: {length} characters. Please shorten it to {limit}."),
        (Photo("p"), "Please type the description as a text message."),
        (DESCRIPTIONS[language], "Where is the problem? Share your location with the button below, or choose the place step by step."),
        (Location(*OUTSIDE), "That location is outside every grid we serve. Please choose the place from the list instead."),
        ("somewhere", "Please share your location with the button, or choose a place from the list."),
        (Location(*GRID_POINT), "Add an address or a landmark (building, street, door number) so the grid worker finds it, or skip."),
        ("a" * 201, "The address is too long. Please keep it under {limit} characters."),
        (Press("address:skip"), "You may send up to {limit} photos of the problem. Press Done when finished, or Skip."),
        ("hello", "Please send a photo, or press Done."),
        (Photo("1"), "Photo {count} received. Send another, or press Done."),
        (Photo("2"), "Photo {count} received. Send another, or press Done."),
        (Photo("3"), "May the grid worker call you about it? Share or type your phone number, or stay anonymous. "
                     "Your number is shown only to the grid worker and the department handling the case."),
        ("call me", "That does not look like a phone number. Type digits only, for example 13800000000, or stay anonymous."),
        (Press("phone:anonymous"), lambda c: "confirm:submit" in c.buttons()),
        ("what?", "Please press Submit, or edit an answer."),
    ])


async def test_a_fourth_photo_is_refused(demo):
    engine = Engine(demo)
    chat = await start(engine, "photos", "zh")
    await chat.run(report_transcript("zh")[:5])
    await chat.run([(Photo("1"), []), (Photo("2"), []), (Photo("3"), []), (Press("edit:photos") if False else "/report", [])])
    # Go through edit: at most three photos even when editing.
    chat2 = await start(engine, "photos-2", "zh")
    await chat2.run(report_transcript("zh")[:8])
    await chat2.run([
        (Press("edit:photos"), "You may send up to {limit} photos of the problem. Press Done when finished, or Skip."),
        (Photo("a"), []), (Photo("b"), []),
        (Press("photos:done"), lambda c: "confirm:submit" in c.buttons()),
    ])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_edit_a_field_from_the_summary_returns_to_the_summary(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"edit-{language}", language)
    await chat.run(report_transcript(language)[:8])
    new_text = "路灯一直闪烁，影响行人。" if language == "zh" else "ལམ་སྒྲོན་རྟག་ཏུ་འཚེར་གྱི་འདུག"
    await chat.run([
        (Press("edit:describe"), "Please describe the problem in a few sentences: what is wrong, since when, who is affected. "
                                 "(at most {limit} characters)"),
        (new_text, [lambda c: new_text in c.text, lambda c: "confirm:submit" in c.buttons()]),
        (Press("edit:locate"), "Where is the problem? Share your location with the button below, or choose the place step by step."),
        (Location(29.6517, 91.1360), [lambda c: "confirm:submit" in c.buttons()]),
        (Press("confirm:submit"), "Your report has been filed. Case number: {number}\n\nGrid: {grid}\nTime limit for handling: {limit}, "
                                  "counted from when a department receives it.\n\nKeep the number: type it here at any time to see what has happened."),
    ])
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == case_number_in(chat)))
        assert case.description == new_text and case.grid.code == "5401-D1-02-01-G01"


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_choose_the_place_step_by_step(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"steps-{language}", language)
    await chat.run(report_transcript(language)[:3])
    await chat.run([
        (Press("place:5401-D1-01"), ["Choose the place in {area}:", lambda c: "place:5401-D1-01-02" in c.buttons()]),
        (Press("place:5401-D1-01-02"), lambda c: "place:5401-D1-01-02-G02" in c.buttons()),
        (Press("place:up"), lambda c: "place:5401-D1-01-02" in c.buttons()),
        (Press("place:5401-D1-01-02"), []),
        (Press("place:5401-D1-01-02-G02"), "Add an address or a landmark (building, street, door number) so the grid worker finds it, or skip."),
    ])


async def test_report_survives_a_restart_mid_way(demo):
    """A new engine (a restarted bot, or another instance) picks the report up where it was."""
    chat = await start(Engine(demo), "restart", "bo")
    await chat.run(report_transcript("bo")[:4])
    chat.engine = Engine(demo)  # the process restarted: nothing kept in memory
    await chat.run(report_transcript("bo")[4:])
    assert CASE_NUMBER.search(chat.text)


async def test_repeated_update_creates_no_second_case(demo):
    engine = Engine(demo)
    chat = await start(engine, "dup", "zh")
    await chat.run(report_transcript("zh")[:8])
    from conversations.protocol import Inbound

    first = await engine.handle(chat.sender, Inbound.press("confirm:submit"), update_id=777)
    again = await engine.handle(chat.sender, Inbound.press("confirm:submit"), update_id=777)
    # The repeat is not handled again; it carries the first answer, for an adapter whose first send was lost.
    assert CASE_NUMBER.search(first[0].text) and again.repeated and again[0].text == first[0].text
    assert again.lost  # not confirmed sent: an adapter answers again at once
    await engine.answered(chat.sender, 777)
    assert not (await engine.handle(chat.sender, Inbound.press("confirm:submit"), update_id=777)).lost
    async with demo() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_idle_report_is_put_aside_and_can_be_resumed(demo):
    engine = Engine(demo, idle_minutes=30)
    chat = await start(engine, "idle", "zh")
    await chat.run(report_transcript("zh")[:3])
    engine.clock = lambda: utcnow() + timedelta(minutes=31)
    await chat.run([
        ("anything", ["Your unfinished report was put aside after {minutes} minutes without an answer. It is kept for 24 hours.",
                      lambda c: "resume:report" in c.buttons()]),
    ])
    await chat.run([
        (Press("resume:report"), ["Welcome back. Let us continue your report where you left it.",
                                  "Where is the problem? Share your location with the button below, or choose the place step by step."]),
        (Location(*GRID_POINT), "Add an address or a landmark (building, street, door number) so the grid worker finds it, or skip."),
    ])


async def test_menu_report_offers_the_draft(demo):
    engine = Engine(demo)
    chat = await start(engine, "draft", "zh")
    await chat.run(report_transcript("zh")[:3])
    await chat.run([
        (Press("menu:cases"), "You have not reported any case yet."),
        (Press("menu:report"), ["You have an unfinished report from {time}. Continue it, or start a new one?"]),
        (Press("resume:discard"), "What kind of problem is it? Choose below, or type a few words and I will suggest the right kind."),
    ])


async def test_wylie_is_recognised_and_converted_after_confirmation(demo):
    engine = Engine(demo)
    chat = await start(engine, "wylie", "bo")
    await chat.run(report_transcript("bo")[:2])
    await chat.run([
        ("lam sgron mi 'bar gyi 'dug", ["It looks like you typed Tibetan in Latin letters (Wylie). Did you mean:\n\n{tibetan}",
                                         lambda c: "ལམ་སྒྲོན་མི་འབར་གྱི་འདུག" in c.text]),
        (Press("wylie:yes"), "Where is the problem? Share your location with the button below, or choose the place step by step."),
    ])
    await chat.run(report_transcript("bo")[3:])
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == case_number_in(chat)))
        assert case.description == "ལམ་སྒྲོན་མི་འབར་གྱི་འདུག" and case.description_language == "bo"


async def test_platform_language_is_preselected(demo):
    chat = Chat(Engine(demo), "hint", "bo", language_code="bo-CN")
    await chat.send("/start")
    assert chat.buttons()[0] == "lang:bo" and chat.replies[0].buttons[0][0].label.startswith("✓")


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_language_switch_at_any_time(demo, language):
    other = "bo" if language == "zh" else "zh"
    chat = await start(Engine(demo), f"switch-{language}", language)
    await chat.send("/language")
    await chat.send(Press(f"lang:{other}"))
    assert says(other, chat.replies, "Language changed.")
    assert says(other, chat.replies, "What would you like to do?")


async def test_help_and_fallback(demo):
    chat = await start(Engine(demo), "help", "bo")
    await chat.run([
        ("/help", [lambda c: "LS-20261124-0042" in c.text and "/" not in c.text.replace("LS-", ""), "What would you like to do?"]),  # no slash commands a phone user never types
        # A photo with no dialog and no open case: not "did not understand", but where it can go.
        (Photo("stray"), ["You have no open case to add this to. To report a problem, start a report: "
                          "you can send photos and voice messages in it.",
                          lambda c: "menu:report" in c.buttons()]),
        ("/nonsense", "Sorry, I did not understand that. Please choose from the menu."),
    ])


async def test_an_expired_draft_is_gone_after_24_hours(demo):
    engine = Engine(demo)
    chat = await start(engine, "expired", "zh")
    await chat.run(report_transcript("zh")[:3])
    engine.clock = lambda: utcnow() + timedelta(minutes=31)
    await chat.run([("anything", lambda c: "resume:report" in c.buttons())])
    engine.clock = lambda: utcnow() + timedelta(hours=25)
    await chat.run([
        ("/menu", lambda c: "resume:report" not in c.buttons()),
        (Press("menu:report"), "What kind of problem is it? Choose below, or type a few words and I will suggest the right kind."),
    ])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_my_grid_shows_its_workers_and_supervision_phone(demo, language):
    chat = await start(Engine(demo), f"grid-{language}", language)
    await chat.run([
        (Press("menu:grid"), "Which grid do you live in? Choose step by step, or share your location."),
        (Location(*GRID_POINT), ["Grid: {grid}", "Supervision and complaints phone: {phone}",
                                 lambda c: "0891-6000001" in c.text and "13800000001" in c.text]),
        # Remembered: next time the card comes at once, and the report offers that grid first.
        (Press("menu:grid"), lambda c: "0891-6000001" in c.text),
        (Press("menu:report"), []),
        (Press(f"matter:{STREET_LIGHT}"), []),
        (DESCRIPTIONS[language], lambda c: c.buttons()[0] == "place:5401-D1-01-01-G01"),
    ])


async def test_a_grid_deep_link_opens_that_grid(demo):
    """The QR code on a grid's notice board: /start grid_CODE (Telegram) or /?grid=CODE (web)."""
    chat = Chat(Engine(demo), "qr", "bo")
    await chat.run([
        ("/start grid_5401-D1-01-02-G02", "Please choose your language."),
        (Press("lang:bo"), ["Supervision and complaints phone: {phone}", lambda c: "0891-6000005" in c.text]),
    ])


async def test_a_matter_withdrawn_meanwhile_is_refused_politely(demo):
    chat = await start(Engine(demo), "withdrawn", "zh")
    await chat.run(report_transcript("zh")[:8])
    async with demo.begin() as session:
        from storage.models import Matter

        matter = await session.scalar(select(Matter).where(Matter.code == STREET_LIGHT))
        matter.withdrawn_at = utcnow()
    await chat.run([
        (Press("confirm:submit"), ["This kind of problem is no longer on the published list. Please choose another.",
                                   "What kind of problem is it? Choose below, or type a few words and I will suggest the right kind.",
                                   lambda c: f"matter:{STREET_LIGHT}" not in c.buttons()]),
        (Press("matter:GM-0302"), lambda c: "confirm:submit" in c.buttons()),  # back to the summary, nothing else lost
    ])


@pytest.mark.parametrize("language", ["zh", "bo"])
async def test_my_cases_and_the_timeline(demo, language):
    engine = Engine(demo)
    chat = await start(engine, f"timeline-{language}", language)
    await chat.run(report_transcript(language))
    number = case_number_in(chat)
    await chat.run([
        (Press("menu:cases"), ["Your cases, newest first. Choose one to see what has happened:",
                               lambda c: f"case:{number}" in c.buttons()]),
        (Press(f"case:{number}"), ["Case {number}", "What has happened:", "Report filed",
                                   ("Status: {state}", {"state": translate(language, "Reported, waiting for the grid centre")})]),
    ])


async def test_a_draft_resumed_after_its_matter_was_withdrawn_asks_for_another(demo):
    engine = Engine(demo)
    chat = await start(engine, "withdrawn-draft", "zh")
    await chat.run(report_transcript("zh")[:8])  # at the summary
    engine.clock = lambda: utcnow() + timedelta(minutes=31)
    await chat.run([("hello", lambda c: "resume:report" in c.buttons())])
    async with demo.begin() as session:
        from storage.models import Matter

        (await session.scalar(select(Matter).where(Matter.code == STREET_LIGHT))).withdrawn_at = utcnow()
    await chat.run([
        (Press("resume:report"), ["This kind of problem is no longer on the published list. Please choose another.",
                                  lambda c: f"matter:{STREET_LIGHT}" not in c.buttons()]),
    ])


async def test_forged_buttons_and_control_characters_get_a_polite_answer(demo):
    engine = Engine(demo)
    chat = await start(engine, "forger", "zh")
    await chat.run(report_transcript("zh")[:1])
    from conversations.protocol import Inbound

    for forged in ["page:abc", "page:-3", "matter:\x00", "place:../../etc", "act:LS-1:accept", "rate:nope", "case:"]:
        replies = await engine.handle(chat.sender, Inbound.press(forged))
        assert replies, forged
    replies = await engine.handle(chat.sender, Inbound.of_text("/start grid_\x00x"))
    assert replies


async def test_resuming_an_old_draft_keeps_the_report_in_progress_as_the_draft(demo):
    engine = Engine(demo)
    chat = await start(engine, "two-drafts", "zh")
    await chat.run(report_transcript("zh")[:3])  # report A, at the place question
    await chat.run([(Press("menu:cases"), "You have not reported any case yet.")])  # A is put aside
    await chat.run([("小区门口的垃圾三天没人清运了", "Is it one of these?")])  # report B begins from free text
    await chat.run([
        (Press("resume:report"), "Where is the problem? Share your location with the button below, or choose the place step by step."),
    ])
    async with demo() as session:  # B waits as the draft now (one draft is kept: the newest put aside)
        from storage.models import DialogState

        states = list(await session.scalars(select(DialogState).where(DialogState.draft.is_not(None))))
        assert [s.draft["data"]["typed"] for s in states] == ["小区门口的垃圾三天没人清运了"]


async def test_an_idle_report_with_only_typed_words_is_kept_too(demo):
    engine = Engine(demo)
    chat = await start(engine, "typed-only", "zh")
    await chat.run([("小区门口的垃圾三天没人清运了", "Is it one of these?")])
    engine.clock = lambda: utcnow() + timedelta(minutes=31)
    await chat.run([
        ("hello?", ["Your unfinished report was put aside after {minutes} minutes without an answer. It is kept for 24 hours.",
                    lambda c: "resume:report" in c.buttons()]),
    ])


async def test_a_photo_arriving_late_is_kept(demo):
    engine = Engine(demo)
    chat = await start(engine, "late-photo", "bo")
    await chat.run(report_transcript("bo")[:7])  # past the photo step, at the phone question
    await chat.run([
        (Photo("slow-upload"), ["Photo {count} received.", lambda c: "phone:anonymous" in c.buttons()]),
        (Press("phone:anonymous"), lambda c: "confirm:submit" in c.buttons()),
        (Press("confirm:submit"), []),
    ])
    async with demo() as session:
        case = await session.scalar(select(Case).where(Case.number == case_number_in(chat)))
        assert [a.platform_file_id for a in case.attachments] == ["photo-1", "slow-upload"]
